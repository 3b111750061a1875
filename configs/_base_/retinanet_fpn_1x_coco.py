# RetinaNet + FPN, 1x schedule on COCO, with the PoolFormer recipe
# (sail-sg/poolformer detection configs, mmdet 2.19): AdamW lr 1e-4, weight
# decay 1e-4, steps at epochs 8 and 11 of 12, linear warm-up 500 iterations
# from 0.001, (1333, 800) keep-ratio resize, flip 0.5, pad to a multiple of 32,
# 8 GPUs x 2 images. Everything else is mmdet's own RetinaNet R-50 config.
#
# Data root: environment variable MMMETAFORMER_COCO_ROOT (default
# ``data/coco/``), defined once in ``configs/_base_/datasets/paths.py``.
#
# A variant config sets ``model.backbone`` (``type``, ``arch``,
# ``out_indices=(1, 2, 3)``, ``init_cfg=dict(type='Pretrained',
# checkpoint=<ImageNet URL>)``) and ``model.neck.in_channels`` (the dims of
# stages 1-3).
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', './datasets/paths.py'
]

custom_imports = dict(imports=['mmmetaformer'], allow_failed_imports=False)

model = dict(
    # Filled in by the variant config.
    backbone=dict(_delete_=True),
    # The official configs tap all 4 stages and start the FPN at level 1
    # (FORK_LAST3=1, stage-0 output unused). Equivalent mmdet idiom: the
    # backbone returns stages 1-3 only and the FPN starts at its first input.
    # ``add_extra_convs='on_input'`` makes P6 from the stride-32 backbone map.
    neck=dict(start_level=0, add_extra_convs='on_input', num_outs=5),
    # mmdet 2.x (the official code) keeps boxes of zero width or height
    # (boxes clipped onto the image border) after decoding; mmdet 3.x drops
    # boxes with w <= min_bbox_size or h <= min_bbox_size when
    # min_bbox_size >= 0, and its RetinaNet test_cfg has 0. -1 turns the
    # filter off: detections then match the official ones one for one
    # (tests/test_pipelines/test_official_pipelines.py). (detectron2, the
    # ResT rows' framework, drops them: see retinanet_fpn_1x_coco_rest.py.)
    test_cfg=dict(min_bbox_size=-1))

data_root = _base_.coco_root
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=1e-4))

# 8 GPUs x 2 images, as the official runs (the mmdet base default): with
# ``--auto-scale-lr`` the lr is scaled linearly to the actual batch size.
auto_scale_lr = dict(base_batch_size=16)
