# Semantic FPN PiT-S, 40k ADE20K, PoolFormer recipe (see the base).
# New baseline: no published number exists for this setting.
# Levels 1-3 are the official stage maps (strides 8/16/32, class token kept
# through the trunk); the stride-4 level is a new ConvTranspose2d; the
# position embedding is resized bicubically to the input grid.
_base_ = './_base_/semfpn_40k_ade20k.py'

model = dict(
    backbone=dict(
        type='PiT',
        arch='s',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/rwightman/pytorch-image-models/'
                       'releases/download/v0.1-pit-weights/pit_s_809.pth')),
    neck=dict(in_channels=[72, 144, 288, 576]))
