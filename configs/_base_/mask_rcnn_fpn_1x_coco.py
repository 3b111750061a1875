# Mask R-CNN + FPN, 1x schedule on COCO, with the PoolFormer recipe
# (sail-sg/poolformer detection configs, mmdet 2.19): as the RetinaNet recipe
# (steps at 8 and 11 of 12 epochs, warm-up 500 iterations from 0.001, (1333,
# 800) keep-ratio resize, flip 0.5, pad /32, 8 GPUs x 2 images) but AdamW lr
# 2e-4, weight decay 1e-4, FPN on all 4 stages. Everything else is mmdet's own
# Mask R-CNN R-50 config.
#
# Data root: environment variable MMMETAFORMER_COCO_ROOT (default
# ``data/coco/``), defined once in ``configs/_base_/datasets/paths.py``.
#
# A variant config sets ``model.backbone`` (``type``, ``arch``,
# ``out_indices=(0, 1, 2, 3)``, ``init_cfg=dict(type='Pretrained',
# checkpoint=<ImageNet URL>)``) and ``model.neck.in_channels``.
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', './datasets/paths.py'
]

custom_imports = dict(imports=['mmmetaformer'], allow_failed_imports=False)

model = dict(backbone=dict(_delete_=True))  # filled in by the variant config

data_root = _base_.coco_root
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, weight_decay=1e-4))

# 8 GPUs x 2 images, as the official runs (the mmdet base default): with
# ``--auto-scale-lr`` the lr is scaled linearly to the actual batch size.
auto_scale_lr = dict(base_batch_size=16)
