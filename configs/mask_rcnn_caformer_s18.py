# Mask R-CNN CAFormer-S18, 1x COCO, PoolFormer recipe.
# No official dense result exists for CAFormer.
_base_ = './_base_/mask_rcnn_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='CAFormer',
        arch='s18',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/caformer/caformer_s18.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
