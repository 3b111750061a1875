"""The converter command lines, one per source format, and what each
source format is. Imports nothing (no torch): the model zoo reads it."""

#: Source format -> the command line that converts it.
CONVERTER_SCRIPTS = {
    'mmdet2': 'tools/model_converters/mmdet2_to_mmdet3.py',
    'mmseg0': 'tools/model_converters/mmseg0_to_mmseg1.py',
    'detectron2': 'tools/model_converters/detectron2_to_mmdet3.py',
}
#: Source format -> what it is, for help texts and messages.
SOURCE_DESCRIPTIONS = {
    'mmdet2': 'an mmdet 2.x detector checkpoint (e.g. the official '
              'PoolFormer RetinaNet / Mask R-CNN releases)',
    'mmseg0': 'an mmseg 0.x segmentor checkpoint (e.g. the official '
              'PoolFormer Semantic FPN or ResTv2 UperNet releases)',
    'detectron2': 'a detectron2 detector checkpoint (.pth; e.g. the '
                  'official ResT / ResTv2 RetinaNet and Mask R-CNN releases)',
}
