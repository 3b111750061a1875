# RetinaNet ResMLP-S12, 1x COCO, PoolFormer recipe (see the base).
# New baseline: no published number exists for this setting.
# Token mixing in 14x14 windows (the official network on each 224 tile);
# 4 levels from the stride-16 map by the simple feature pyramid (new
# layers). ImageNet weights: the distilled deit release (README models).
_base_ = './_base_/retinanet_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='ResMLP',
        arch='s12',
        out_indices=(1, 2, 3),  # the stride-4 level is unused
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://dl.fbaipublicfiles.com/deit/'
                       'resmlp_12_dist.pth')),
    neck=dict(in_channels=[192, 384, 384]))
