# Semantic FPN RandFormer-M36, 40k ADE20K, PoolFormer recipe.
# No official dense result exists for RandFormer.
_base_ = './semfpn_randformer_s12.py'

model = dict(
    backbone=dict(
        arch='m36',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/randformer/randformer_m36.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
