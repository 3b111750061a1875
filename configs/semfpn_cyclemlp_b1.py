# Semantic FPN CycleMLP-B1, 40k ADE20K (no official dense result or config).
# Recipe: CycleMLP trains its dense models "following PVT" (paper, arXiv
# 2107.10224); the PVT Semantic FPN config (whai362/PVT
# segmentation/configs/sem_fpn/PVT/fpn_pvt_s_ade20k_40k.py) is AdamW lr 2e-4,
# weight decay 1e-4, poly (power 0.9, min lr 0), 40k iterations, 8 GPUs x 4
# images, 512x512 crops, AlignResize test: exactly the shared Semantic FPN
# base. CycleMLP's dense code was never released, so this recipe is an
# assumption, not a read config. drop_path_rate stays 0: the official dense
# classes drop every keyword argument.
_base_ = './_base_/semfpn_40k_ade20k.py'

model = dict(
    backbone=dict(
        type='CycleMLP',
        arch='b1',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/ShoufaChen/CycleMLP/releases/'
                       'download/v0.1/CycleMLP_B1.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
