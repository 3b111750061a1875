# RetinaNet PoolFormer-S12, 1x COCO (official: 36.2 box AP).
_base_ = './_base_/retinanet_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='PoolFormer',
        arch='s12',
        out_indices=(1, 2, 3),  # stage 0 unused (official FORK_LAST3=1)
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/sail-sg/poolformer/releases/'
                       'download/v1.0/poolformer_s12.pth.tar')),
    neck=dict(in_channels=[128, 320, 512]))
