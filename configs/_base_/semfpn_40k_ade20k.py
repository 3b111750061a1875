# Semantic FPN, 40k iterations on ADE20K, with the PoolFormer recipe
# (sail-sg/poolformer segmentation configs, mmseg 0.19): AdamW lr 2e-4, weight
# decay 1e-4, poly schedule (power 0.9, min lr 0), 8 GPUs x 4 images, 512x512
# crops, FPN 256 channels / 4 outputs, FPNHead 128 channels with SyncBN,
# checkpoint and evaluation every 4k iterations. Everything else is mmseg's own
# Semantic FPN R-50 config: train pipeline RandomResize (2048, 512) x 0.5-2.0,
# RandomCrop 512 (cat_max_ratio 0.75), flip 0.5, PhotoMetricDistortion,
# ``reduce_zero_label=True``; the official test resize (``AlignResize``:
# keep-ratio to (2048, 512), then to a multiple of 32) is Resize +
# ResizeToMultiple in mmseg 1.x.
#
# The official configs wrap the train set in RepeatDataset x50; with mmseg's
# infinite sampler that changes nothing but the data order, so it is omitted.
#
# Data root: environment variable MMMETAFORMER_ADE_ROOT (default
# ``data/ade/ADEChallengeData2016/``), defined once in
# ``configs/_base_/datasets/paths.py``.
#
# A variant config sets ``model.backbone`` (``type``, ``arch``,
# ``out_indices=(0, 1, 2, 3)``, ``init_cfg=dict(type='Pretrained',
# checkpoint=<ImageNet URL>)``) and ``model.neck.in_channels``.
_base_ = [
    'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py',
    './datasets/paths.py', './datasets/ade20k_align_test.py'
]

custom_imports = dict(imports=['mmmetaformer'], allow_failed_imports=False)

model = dict(
    pretrained=None,  # the backbone's own init_cfg loads ImageNet weights
    backbone=dict(_delete_=True),  # filled in by the variant config
    decode_head=dict(num_classes=150))

data_root = _base_.ade_root
test_pipeline = _base_.ade_align_test_pipeline
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
val_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        begin=0,
        end=40000,
        by_epoch=False)
]
train_cfg = dict(max_iters=40000, val_interval=4000)
default_hooks = dict(checkpoint=dict(interval=4000))

# 8 GPUs x 4 images, as the official runs: with ``enable=True`` the lr is
# scaled linearly to the actual batch size.
auto_scale_lr = dict(enable=False, base_batch_size=32)
