# Mask R-CNN + FPN 3x on COCO with the published ResTv2 recipe
# (wofmanaf/ResT object_detection/configs/ResTv2/mask_rcnn_restv2_*_FPN_3x.yaml
# on its Base-RCNN-FPN.yaml), ported onto the shared Mask R-CNN base:
#
# * AdamW lr 1e-4, weight decay 0.05, no weight decay on norm layers
#   (detectron2's default), gradient clipping "full_model" to an L2 norm of
#   0.01, mixed precision (AMP; mmengine's AmpOptimWrapper needs a GPU).
# * 16 images per batch, 270k iterations with steps at 210k and 250k: here
#   37 epochs of 7.3k iterations (about 271k) with steps after epochs 29 and
#   34 (about 212k and 249k); warm-up 1000 iterations from 0.001 (detectron2's
#   default). Validation every 3 epochs (the official: every 20k
#   iterations).
# * Training augmentation: relative random crop 0.9 x 0.9, then the shorter
#   side chosen from 480, 512, 534, 576, 640, 672, 704, 736, 768, 800 (longer
#   side at most 1333), horizontal flip. Test: (1333, 800), resized as
#   detectron2's DatasetMapper does (PIL bilinear,
#   ``datasets/coco_detectron2_test.py``; checked end to end for the ResT
#   v1 Mask R-CNN, which runs through the same detectron2 mapper; no ResTv2
#   reference was generated).
# * Input: RGB, ImageNet mean/std, as the v2 configs set (mmdet's default).
#
# A variant sets ``model.backbone`` (``type='ResTV2'``, ``arch``,
# ``drop_path_rate``, ``init_cfg``); the neck's channels are those of
# tiny/small/base.
_base_ = [
    './mask_rcnn_fpn_1x_coco.py', './datasets/coco_detectron2_test.py'
]

model = dict(neck=dict(in_channels=[96, 192, 384, 768]))

test_pipeline = _base_.d2_ins_test_pipeline
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomCrop', crop_type='relative', crop_size=(0.9, 0.9)),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 480), (1333, 512), (1333, 534), (1333, 576),
                (1333, 640), (1333, 672), (1333, 704), (1333, 736),
                (1333, 768), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0),
    clip_grad=dict(max_norm=0.01, norm_type=2))
max_epochs = 37
train_cfg = dict(max_epochs=max_epochs, val_interval=3)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
        milestones=[29, 34], gamma=0.1)
]
