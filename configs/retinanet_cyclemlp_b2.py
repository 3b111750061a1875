# RetinaNet CycleMLP-B2, 1x COCO (no official dense result or config).
_base_ = './retinanet_cyclemlp_b1.py'

model = dict(
    backbone=dict(
        arch='b2',
        init_cfg=dict(
            checkpoint='https://github.com/ShoufaChen/CycleMLP/releases/'
                       'download/v0.1/CycleMLP_B2.pth')))
