# RetinaNet PiT-Ti, 1x COCO, PoolFormer recipe (see the base).
# New baseline: no published number exists for this setting.
# Levels 1-3 are the official stage maps (strides 8/16/32, class token kept
# through the trunk); the stride-4 level is a new ConvTranspose2d; the
# position embedding is resized bicubically to the input grid.
_base_ = './_base_/retinanet_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='PiT',
        arch='ti',
        out_indices=(1, 2, 3),  # the stride-4 level is unused
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/rwightman/pytorch-image-models/'
                       'releases/download/v0.1-pit-weights/pit_ti_730.pth')),
    neck=dict(in_channels=[64, 128, 256]))
