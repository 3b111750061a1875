# Mask R-CNN PoolFormerV2-S36, 1x COCO, PoolFormer recipe.
# No official dense result exists for PoolFormerV2.
_base_ = './mask_rcnn_poolformerv2_s12.py'

model = dict(
    backbone=dict(
        arch='s36',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/poolformerv2/poolformerv2_s36.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
