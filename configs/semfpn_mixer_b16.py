# Semantic FPN MLP-Mixer-B/16, 40k ADE20K, PoolFormer recipe (see the base).
# New baseline: no published number exists for this setting.
# Token mixing in 14x14 windows (the official network on each 224 tile);
# 4 levels from the stride-16 map by the simple feature pyramid (new
# layers); official JAX GELU (tanh) as the released weights.
_base_ = './_base_/semfpn_40k_ade20k.py'

model = dict(
    backbone=dict(
        type='MLPMixer',
        arch='b16',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://storage.googleapis.com/mixer_models/'
                       'imagenet1k/Mixer-B_16.npz')),
    neck=dict(in_channels=[192, 384, 768, 768]))
