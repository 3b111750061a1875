# Mask R-CNN IdentityFormer-M36, 1x COCO, PoolFormer recipe.
# No official dense result exists for IdentityFormer.
_base_ = './mask_rcnn_identityformer_s12.py'

model = dict(
    backbone=dict(
        arch='m36',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/identityformer/identityformer_m36.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
