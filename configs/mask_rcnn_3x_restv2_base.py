# Mask R-CNN ResTv2-Base + FPN, 3x COCO, published recipe
# (object_detection/configs/ResTv2/mask_rcnn_restv2_base_FPN_3x.yaml; published
# box AP 48.7, mask AP 43.9 with detectron2). Recipe and its port:
# ``_base_/mask_rcnn_fpn_3x_coco_restv2.py``. drop_path_rate 0.3 as the
# official builder.
# ImageNet weights: the official ResTv2 releases are on Baidu only (access
# code "rest"; wofmanaf/ResT README), no direct URL exists. Put the file
# (``{'model': ...}`` as released) at
# $MMMETAFORMER_CHECKPOINTS/restv2_base_224.pth (default ./checkpoints/);
# the backbone converts the official keys when loading.
_base_ = './_base_/mask_rcnn_fpn_3x_coco_restv2.py'

model = dict(
    backbone=dict(
        type='ResTV2',
        arch='base',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='{{$MMMETAFORMER_CHECKPOINTS:checkpoints}}'
            '/restv2_base_224.pth')))
