# UperNet 160k on ADE20K (512x512 crops) with the published ResTv2 recipe
# (wofmanaf/ResT semantic_segmentation/configs/ResTv2/
# upernet_restv2_*_512_160k_ade20k.py, mmseg 0.x). mmseg 1.x's own Swin-T
# UperNet config is the same setup (UPerHead 512 channels, pool scales
# (1, 2, 3, 6), dropout 0.1, SyncBN; auxiliary FCNHead on stage 3 with 256
# channels and loss weight 0.4; 8 GPUs x 2 images; 160k iterations; linear
# warm-up 1500 iterations from 1e-6, then poly with power 1.0 down to 0;
# AdamW lr 6e-5, betas (0.9, 0.999), weight decay 0.01 and no decay for
# parameters whose names contain "norm": the ResTv2-T optimizer), so it is
# inherited as is; the small/base variants replace the optimizer.
#
# Test resize: the official AlignResize (keep-ratio to (2048, 512), then a
# resize to a multiple of 32), which is mmseg 1.x's Resize +
# ResizeToMultiple. The official repository lacks its ``_base_`` dataset
# file, but its ``tools/train.py`` imports and registers ``AlignResize``
# (``tools/align_resize.py``, a copy of sail-sg/poolformer's
# ``segmentation/align_resize.py``), which no other published file uses:
# the import is there for the dataset config, which in the PoolFormer code
# it was copied from puts AlignResize in the test pipeline only. The train
# pipeline is mmseg's ADE20K default (as PoolFormer's).
#
# Evaluation: ``python tools/test.py CONFIG CKPT`` is single scale; the
# published mIoU (47.3 / 49.2 / 49.6) is mmseg 0.x ``--aug-test``
# (multi-scale (2048, 512) x {0.5, 0.75, 1.0, 1.25, 1.5, 1.75} + flip, each
# scale aligned to 32), which ``python tools/test.py CONFIG CKPT --tta`` and
# ``tools/reproduce.py`` run (protocol ``ade-align-2048x512-msflip``).
#
# Data root: MMMETAFORMER_ADE_ROOT (``configs/_base_/datasets/paths.py``).
_base_ = [
    'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_'
    'ade20k-512x512.py', './datasets/paths.py',
    './datasets/ade20k_align_test.py'
]

custom_imports = dict(imports=['mmmetaformer'], allow_failed_imports=False)

model = dict(
    backbone=dict(_delete_=True),  # filled in by the variant config
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))

data_root = _base_.ade_root
test_pipeline = _base_.ade_align_test_pipeline
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
