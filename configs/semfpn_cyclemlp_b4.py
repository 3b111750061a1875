# Semantic FPN CycleMLP-B4, 40k ADE20K (no official dense result or config).
_base_ = './semfpn_cyclemlp_b1.py'

model = dict(
    backbone=dict(
        arch='b4',
        init_cfg=dict(
            checkpoint='https://github.com/ShoufaChen/CycleMLP/releases/'
                       'download/v0.1/CycleMLP_B4.pth')))
