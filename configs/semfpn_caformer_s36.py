# Semantic FPN CAFormer-S36, 40k ADE20K, PoolFormer recipe.
# No official dense result exists for CAFormer.
_base_ = './semfpn_caformer_s18.py'

model = dict(
    backbone=dict(
        arch='s36',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/caformer/caformer_s36.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
