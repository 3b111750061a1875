# Semantic FPN PoolFormerV2-M48, 40k ADE20K, PoolFormer recipe.
# No official dense result exists for PoolFormerV2.
_base_ = './semfpn_poolformerv2_s12.py'

model = dict(
    backbone=dict(
        arch='m48',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/poolformerv2/poolformerv2_m48.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
