# Semantic FPN CAFormer-B36, 40k ADE20K, PoolFormer recipe.
# No official dense result exists for CAFormer.
_base_ = './semfpn_caformer_s18.py'

model = dict(
    backbone=dict(
        arch='b36',
        init_cfg=dict(
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/caformer/caformer_b36.pth')),
    neck=dict(in_channels=[128, 256, 512, 768]))
