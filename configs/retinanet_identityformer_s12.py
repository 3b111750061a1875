# RetinaNet IdentityFormer-S12, 1x COCO, PoolFormer recipe.
# No official dense result exists for IdentityFormer.
_base_ = './_base_/retinanet_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='IdentityFormer',
        arch='s12',
        out_indices=(1, 2, 3),  # stage 0 unused (FPN on strides 8-32)
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/identityformer/identityformer_s12.pth')),
    neck=dict(in_channels=[128, 320, 512]))
