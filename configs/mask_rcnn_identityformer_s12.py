# Mask R-CNN IdentityFormer-S12, 1x COCO, PoolFormer recipe.
# No official dense result exists for IdentityFormer.
_base_ = './_base_/mask_rcnn_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='IdentityFormer',
        arch='s12',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/identityformer/identityformer_s12.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
