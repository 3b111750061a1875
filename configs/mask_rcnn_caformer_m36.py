# Mask R-CNN CAFormer-M36, 1x COCO, PoolFormer recipe.
# No official dense result exists for CAFormer.
_base_ = './mask_rcnn_caformer_s18.py'

model = dict(
    backbone=dict(
        arch='m36',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/caformer/caformer_m36.pth')),
    neck=dict(in_channels=[96, 192, 384, 576]))
