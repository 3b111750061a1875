# RetinaNet MLP-Mixer-B/16, 1x COCO, PoolFormer recipe (see the base).
# New baseline: no published number exists for this setting.
# Token mixing in 14x14 windows (the official network on each 224 tile);
# 4 levels from the stride-16 map by the simple feature pyramid (new
# layers); official JAX GELU (tanh) as the released weights.
_base_ = './_base_/retinanet_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='MLPMixer',
        arch='b16',
        out_indices=(1, 2, 3),  # the stride-4 level is unused
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://storage.googleapis.com/mixer_models/'
                       'imagenet1k/Mixer-B_16.npz')),
    neck=dict(in_channels=[384, 768, 768]))
