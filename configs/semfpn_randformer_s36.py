# Semantic FPN RandFormer-S36, 40k ADE20K, PoolFormer recipe.
# No official dense result exists for RandFormer.
_base_ = './semfpn_randformer_s12.py'

model = dict(
    backbone=dict(
        arch='s36',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/randformer/randformer_s36.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
