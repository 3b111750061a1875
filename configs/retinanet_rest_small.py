# RetinaNet ResT-Small (v1) + FPN, 1x COCO, published recipe
# (object_detection/configs/ResTv1/retinanet_rest_small_FPN_1x.yaml; published
# box AP 40.3 with detectron2). Recipe and its port:
# ``_base_/retinanet_fpn_1x_coco_rest.py`` (note: BGR input,
# std 1, as published).
# drop_path_rate 0.1: the official detectron2 builder's value.
# ImageNet weights: the official ResT releases are on Baidu (access code
# "rest") and in the Google Drive folder 1H6QUZsKYbU6LECtxzGHKqEeGbx1E8uQ9
# (wofmanaf/ResT README); no direct URL exists. Put the file (``{'model':
# ...}`` as released) at $MMMETAFORMER_CHECKPOINTS/rest_small.pth
# (default ./checkpoints/); the backbone converts the official keys when
# loading.
_base_ = './_base_/retinanet_fpn_1x_coco_rest.py'

model = dict(
    backbone=dict(
        type='ResT',
        arch='small',
        out_indices=(1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='{{$MMMETAFORMER_CHECKPOINTS:checkpoints}}'
            '/rest_small.pth')),
    neck=dict(in_channels=[128, 256, 512]))
