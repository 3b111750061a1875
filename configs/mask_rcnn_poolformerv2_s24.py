# Mask R-CNN PoolFormerV2-S24, 1x COCO, PoolFormer recipe.
# No official dense result exists for PoolFormerV2.
_base_ = './mask_rcnn_poolformerv2_s12.py'

model = dict(
    backbone=dict(
        arch='s24',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/poolformerv2/poolformerv2_s24.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
