# Mask R-CNN CycleMLP-B1, 1x COCO (no official dense result or config).
# Recipe: CycleMLP trains its dense models "following PVT" (paper, arXiv
# 2107.10224, as summarised in the project's issue; the paper's tables were
# not available here): AdamW lr 1e-4, weight decay 1e-4, 1x schedule, 16
# images per batch. NOTE: PVT's released Mask R-CNN configs (whai362/PVT
# detection/configs/mask_rcnn_pvt_*_fpn_1x_coco.py) use lr 2e-4, as does the
# shared base; the paper's 1e-4 is used here. CycleMLP's dense code was never released, so this recipe is an
# assumption, not a read config. drop_path_rate stays 0: the official dense
# classes drop every keyword argument.
_base_ = './_base_/mask_rcnn_fpn_1x_coco.py'

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

optim_wrapper = dict(optimizer=dict(lr=1e-4))
