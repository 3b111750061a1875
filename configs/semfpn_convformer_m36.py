# Semantic FPN ConvFormer-M36, 40k ADE20K, PoolFormer recipe.
# No official dense result exists for ConvFormer.
_base_ = './semfpn_convformer_s18.py'

model = dict(
    backbone=dict(
        arch='m36',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/convformer/convformer_m36.pth')),
    neck=dict(in_channels=[96, 192, 384, 576]))
