# Mask R-CNN RandFormer-M48, 1x COCO, PoolFormer recipe.
# No official dense result exists for RandFormer.
_base_ = './mask_rcnn_randformer_s12.py'

model = dict(
    backbone=dict(
        arch='m48',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/randformer/randformer_m48.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
