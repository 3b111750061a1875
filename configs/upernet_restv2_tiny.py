# UperNet ResTv2-Tiny, 160k ADE20K, published recipe
# (semantic_segmentation/configs/ResTv2/upernet_restv2_tiny_512_160k_ade20k.py;
# published mIoU 47.3, multi-scale + flip). Recipe and its port:
# ``_base_/upernet_160k_ade20k_restv2.py``. drop_path_rate 0.1 as the official
# config.
# ImageNet weights: the official ResTv2 releases are on Baidu only (access
# code "rest"; wofmanaf/ResT README), no direct URL exists. Put the file
# (``{'model': ...}`` as released) at
# $MMMETAFORMER_CHECKPOINTS/restv2_tiny_224.pth (default ./checkpoints/);
# the backbone converts the official keys when loading.
# (The official tiny config has ``pretrained=""``; the published model is
# assumed to start from the ImageNet weights like small/base.)
_base_ = './_base_/upernet_160k_ade20k_restv2.py'

model = dict(
    backbone=dict(
        type='ResTV2',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='{{$MMMETAFORMER_CHECKPOINTS:checkpoints}}'
            '/restv2_tiny_224.pth')))

# The ResTv2-T optimizer is the base's (AdamW lr 6e-5, weight decay 0.01, no
# decay for "norm" parameters).
