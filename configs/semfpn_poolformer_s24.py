# Semantic FPN PoolFormer-S24, 40k ADE20K (official: 40.3 mIoU).
_base_ = './semfpn_poolformer_s12.py'

model = dict(
    backbone=dict(
        arch='s24',
        init_cfg=dict(
            checkpoint='https://github.com/sail-sg/poolformer/releases/'
                       'download/v1.0/poolformer_s24.pth.tar')))
