# RetinaNet ConvFormer-S18, 1x COCO, PoolFormer recipe.
# No official dense result exists for ConvFormer.
_base_ = './_base_/retinanet_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='ConvFormer',
        arch='s18',
        out_indices=(1, 2, 3),  # stage 0 unused (FPN on strides 8-32)
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/convformer/convformer_s18.pth')),
    neck=dict(in_channels=[128, 320, 512]))
