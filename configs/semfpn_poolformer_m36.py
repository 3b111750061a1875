# Semantic FPN PoolFormer-M36, 40k ADE20K (official: 42.4 mIoU).
_base_ = './semfpn_poolformer_s12.py'

model = dict(
    backbone=dict(
        arch='m36',
        init_cfg=dict(
            checkpoint='https://github.com/sail-sg/poolformer/releases/'
                       'download/v1.0/poolformer_m36.pth.tar')),
    neck=dict(in_channels=[96, 192, 384, 768]))
