# Mask R-CNN PoolFormer-S24, 1x COCO (official: 40.1 box AP, 37.0 mask AP).
_base_ = './mask_rcnn_poolformer_s12.py'

model = dict(
    backbone=dict(
        arch='s24',
        init_cfg=dict(
            checkpoint='https://github.com/sail-sg/poolformer/releases/'
                       'download/v1.0/poolformer_s24.pth.tar')))
