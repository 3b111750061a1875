# RetinaNet CycleMLP-B1, 1x COCO (no official dense result or config).
# Recipe: CycleMLP trains its dense models "following PVT" (paper, arXiv
# 2107.10224); the PVT RetinaNet 1x config (whai362/PVT
# detection/configs/retinanet_pvt_s_fpn_1x_coco.py) is AdamW lr 1e-4, weight
# decay 1e-4, mmdet's 1x schedule, 8 GPUs x 2 images, FPN from stage 1 with
# P6 from the input: exactly the shared RetinaNet base. CycleMLP's dense code
# was never released, so this recipe is an assumption, not a read config.
# drop_path_rate stays 0: the official dense classes drop every keyword
# argument, so the (unreleased) dense runs could not have used drop path.
_base_ = './_base_/retinanet_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='CycleMLP',
        arch='b1',
        out_indices=(1, 2, 3),  # stage 0 unused (FPN start_level=1 in PVT)
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/ShoufaChen/CycleMLP/releases/'
                       'download/v0.1/CycleMLP_B1.pth')),
    neck=dict(in_channels=[128, 320, 512]))
