# Semantic FPN ResT-Base (v1), 40k ADE20K: a new baseline (the official
# repository has no ResT v1 segmentation code, config or result). Recipe: the
# shared Semantic FPN base (the PoolFormer/PVT recipe: AdamW lr 2e-4, weight
# decay 1e-4, poly 0.9, 8 GPUs x 4 images, 512x512 crops, RGB ImageNet
# normalisation, as the ImageNet models were trained). The official output
# norms (LayerNorm per stage, in the trunk; stage 4 the ImageNet final norm)
# are used; drop_path_rate 0.2 as the official detectron2 builder.
# ImageNet weights: the official ResT releases are on Baidu (access code
# "rest") and in the Google Drive folder 1H6QUZsKYbU6LECtxzGHKqEeGbx1E8uQ9
# (wofmanaf/ResT README); no direct URL exists. Put the file (``{'model':
# ...}`` as released) at $MMMETAFORMER_CHECKPOINTS/rest_base.pth
# (default ./checkpoints/); the backbone converts the official keys when
# loading.
_base_ = './_base_/semfpn_40k_ade20k.py'

model = dict(
    backbone=dict(
        type='ResT',
        arch='base',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='{{$MMMETAFORMER_CHECKPOINTS:checkpoints}}'
            '/rest_base.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
