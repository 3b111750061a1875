# RetinaNet ResT-Base (v1) + FPN, 1x COCO, published recipe
# (object_detection/configs/ResTv1/retinanet_rest_base_FPN_1x.yaml; published
# box AP 42.0 with detectron2). Recipe and its port:
# ``_base_/retinanet_fpn_1x_coco_rest.py`` (note: BGR input,
# std 1, as published).
# drop_path_rate 0.2: the official detectron2 builder's value.
# ImageNet weights: the official ResT releases are on Baidu (access code
# "rest") and in the Google Drive folder 1H6QUZsKYbU6LECtxzGHKqEeGbx1E8uQ9
# (wofmanaf/ResT README); no direct URL exists. Put the file (``{'model':
# ...}`` as released) at $MMMETAFORMER_CHECKPOINTS/rest_base.pth
# (default ./checkpoints/); the backbone converts the official keys when
# loading.
_base_ = './_base_/retinanet_fpn_1x_coco_rest.py'

model = dict(
    backbone=dict(
        type='ResT',
        arch='base',
        out_indices=(1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='{{$MMMETAFORMER_CHECKPOINTS:checkpoints}}'
            '/rest_base.pth')),
    neck=dict(in_channels=[192, 384, 768]))
