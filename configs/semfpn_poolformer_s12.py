# Semantic FPN PoolFormer-S12, 40k ADE20K (official: 37.2 mIoU).
_base_ = './_base_/semfpn_40k_ade20k.py'

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
