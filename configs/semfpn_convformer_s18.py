# Semantic FPN ConvFormer-S18, 40k ADE20K, PoolFormer recipe.
# No official dense result exists for ConvFormer.
_base_ = './_base_/semfpn_40k_ade20k.py'

model = dict(
    backbone=dict(
        type='ConvFormer',
        arch='s18',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/convformer/convformer_s18.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
