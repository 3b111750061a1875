# detectron2's COCO test pipeline (the framework of the ResT v1 detection
# rows) in mmdet 3.x terms: its DatasetMapper's ResizeShortestEdge(800,
# max 1333) resizes uint8 images with PIL (bilinear), not cv2, to the sizes
# of mmcv's keep-ratio (1333, 800) resize. Bases that use it list this file
# in ``_base_`` and set ``test_pipeline = _base_.d2_det_test_pipeline``
# (boxes) or ``_base_.d2_ins_test_pipeline`` (boxes and masks).
d2_test_resize = dict(
    type='Resize',
    scale=(1333, 800),
    keep_ratio=True,
    backend='pillow',
    interpolation='bilinear')
d2_test_pack = dict(
    type='PackDetInputs',
    meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
               'scale_factor'))
d2_det_test_pipeline = [
    dict(type='LoadImageFromFile'), d2_test_resize,
    dict(type='LoadAnnotations', with_bbox=True), d2_test_pack
]
d2_ins_test_pipeline = [
    dict(type='LoadImageFromFile'), d2_test_resize,
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    d2_test_pack
]
