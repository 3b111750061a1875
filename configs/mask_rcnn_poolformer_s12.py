# Mask R-CNN PoolFormer-S12, 1x COCO (official: 37.3 box AP, 34.6 mask AP).
_base_ = './_base_/mask_rcnn_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='PoolFormer',
        arch='s12',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/sail-sg/poolformer/releases/'
                       'download/v1.0/poolformer_s12.pth.tar')),
    neck=dict(in_channels=[64, 128, 320, 512]))
