# RetinaNet IdentityFormer-S36, 1x COCO, PoolFormer recipe.
# No official dense result exists for IdentityFormer.
_base_ = './retinanet_identityformer_s12.py'

model = dict(
    backbone=dict(
        arch='s36',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/identityformer/identityformer_s36.pth')),
    neck=dict(in_channels=[128, 320, 512]))
