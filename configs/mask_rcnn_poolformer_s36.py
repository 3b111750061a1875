# Mask R-CNN PoolFormer-S36, 1x COCO (official: 41.0 box AP, 37.7 mask AP).
_base_ = './mask_rcnn_poolformer_s12.py'

model = dict(
    backbone=dict(
        arch='s36',
        init_cfg=dict(
            checkpoint='https://github.com/sail-sg/poolformer/releases/'
                       'download/v1.0/poolformer_s36.pth.tar')))
