# Mask R-CNN IdentityFormer-S36, 1x COCO, PoolFormer recipe.
# No official dense result exists for IdentityFormer.
_base_ = './mask_rcnn_identityformer_s12.py'

model = dict(
    backbone=dict(
        arch='s36',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/identityformer/identityformer_s36.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
