# UperNet CAFormer-S36, 160k ADE20K (512x512), the MetaFormer-baselines
# dense setting. Paper v4 (arXiv 2210.13452v4): 50.8 mIoU, 67M parameters, as
# quoted in this project's issue 13 (the paper's table was not read here:
# unverified, so the zoo row has no number;
# the paper's optimizer settings were not retrieved, so the mmseg Swin-T
# UperNet 160k recipe of the base is used and drop path is left at 0).
# Backbone outputs with the package's default output norms.
_base_ = './_base_/upernet_160k_ade20k.py'

model = dict(
    backbone=dict(
        type='CAFormer',
        arch='s36',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://huggingface.co/sail/dl/resolve/main'
                       '/caformer/caformer_s36.pth')),
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320))
