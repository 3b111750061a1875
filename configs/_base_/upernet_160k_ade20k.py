# UperNet 160k on ADE20K (512x512 crops): mmseg 1.x's Swin-T UperNet setting
# as it is -- UPerHead 512 channels, pool scales (1, 2, 3, 6), dropout 0.1,
# SyncBN; auxiliary FCNHead on the stride-16 map (256 channels, loss weight
# 0.4); 8 GPUs x 2 images; 160k iterations; linear warm-up 1500 iterations
# from 1e-6, then poly (power 1.0) down to 0; AdamW lr 6e-5, weight decay
# 0.01, no decay for "norm" parameters. Evaluation: single scale (mmseg's
# default test pipeline). ``tools/test.py --tta`` runs the multi-scale + flip
# protocol of a config whose model-zoo row publishes one (and says so for a
# config without).
#
# A variant config sets ``model.backbone`` (``out_indices=(0, 1, 2, 3)``),
# ``model.decode_head.in_channels`` (the 4 level widths) and
# ``model.auxiliary_head.in_channels`` (the stride-16 width).
#
# Data root: MMMETAFORMER_ADE_ROOT (``configs/_base_/datasets/paths.py``).
_base_ = [
    'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_'
    'ade20k-512x512.py', './datasets/paths.py'
]

custom_imports = dict(imports=['mmmetaformer'], allow_failed_imports=False)

model = dict(backbone=dict(_delete_=True))  # filled in by the variant

data_root = _base_.ade_root
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
