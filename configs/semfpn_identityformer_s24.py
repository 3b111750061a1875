# Semantic FPN IdentityFormer-S24, 40k ADE20K, PoolFormer recipe.
# No official dense result exists for IdentityFormer.
_base_ = './semfpn_identityformer_s12.py'

model = dict(
    backbone=dict(
        arch='s24',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/identityformer/identityformer_s24.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
