# Semantic FPN ResMLP-S24, 40k ADE20K, PoolFormer recipe (see the base).
# New baseline: no published number exists for this setting.
# Token mixing in 14x14 windows (the official network on each 224 tile);
# 4 levels from the stride-16 map by the simple feature pyramid (new
# layers). ImageNet weights: the distilled deit release (README models).
_base_ = './_base_/semfpn_40k_ade20k.py'

model = dict(
    backbone=dict(
        type='ResMLP',
        arch='s24',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://dl.fbaipublicfiles.com/deit/'
                       'resmlp_24_dist.pth')),
    neck=dict(in_channels=[96, 192, 384, 384]))
