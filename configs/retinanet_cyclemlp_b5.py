# RetinaNet CycleMLP-B5, 1x COCO (no official dense result or config).
_base_ = './retinanet_cyclemlp_b1.py'

model = dict(
    backbone=dict(
        arch='b5',
        init_cfg=dict(
            checkpoint='https://github.com/ShoufaChen/CycleMLP/releases/'
                       'download/v0.1/CycleMLP_B5.pth')),
    neck=dict(in_channels=[192, 384, 768]))
