# Mask R-CNN ConvFormer-B36, 1x COCO, PoolFormer recipe.
# No official dense result exists for ConvFormer.
_base_ = './mask_rcnn_convformer_s18.py'

model = dict(
    backbone=dict(
        arch='b36',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/convformer/convformer_b36.pth')),
    neck=dict(in_channels=[128, 256, 512, 768]))
