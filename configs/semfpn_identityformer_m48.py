# Semantic FPN IdentityFormer-M48, 40k ADE20K, PoolFormer recipe.
# No official dense result exists for IdentityFormer.
_base_ = './semfpn_identityformer_s12.py'

model = dict(
    backbone=dict(
        arch='m48',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/identityformer/identityformer_m48.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
