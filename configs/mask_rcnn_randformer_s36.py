# Mask R-CNN RandFormer-S36, 1x COCO, PoolFormer recipe.
# No official dense result exists for RandFormer.
_base_ = './mask_rcnn_randformer_s12.py'

model = dict(
    backbone=dict(
        arch='s36',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/randformer/randformer_s36.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
