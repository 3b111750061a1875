# Mask R-CNN PoolFormerV2-M36, 1x COCO, PoolFormer recipe.
# No official dense result exists for PoolFormerV2.
_base_ = './mask_rcnn_poolformerv2_s12.py'

model = dict(
    backbone=dict(
        arch='m36',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/poolformerv2/poolformerv2_m36.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
