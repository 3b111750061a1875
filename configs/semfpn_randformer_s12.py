# Semantic FPN RandFormer-S12, 40k ADE20K, PoolFormer recipe.
# No official dense result exists for RandFormer.
# RandFormer mixes stage-2/3 tokens with its frozen 196x196 / 49x49 matrices
# inside 14x14 / 7x7 windows (zero-padded border windows): see RandomMixing.
_base_ = './_base_/semfpn_40k_ade20k.py'

model = dict(
    backbone=dict(
        type='RandFormer',
        arch='s12',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/randformer/randformer_s12.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
