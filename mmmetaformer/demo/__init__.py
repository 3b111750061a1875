"""Synthetic demo data: COCO-format detection/instance segmentation and
ADE20K-format semantic segmentation of simple shapes, generated
deterministically in seconds (numpy + OpenCV, no download).

Command line: ``python tools/generate_demo_data.py --out data/demo``.
The demo config's hook, :class:`ValidateBeforeTrainHook`, lives in
:mod:`mmmetaformer.engine.hooks`.
"""
from .generate import (GENERATOR_VERSION, generate_ade_split,
                       generate_coco_split, generate_demo_data)
from .shapes import (CLASSES, Shape, mask_to_bbox, polygon_to_coco,
                     render_scene, scene_batch)

__all__ = [
    'CLASSES', 'GENERATOR_VERSION', 'Shape', 'generate_ade_split',
    'generate_coco_split', 'generate_demo_data', 'mask_to_bbox',
    'polygon_to_coco', 'render_scene', 'scene_batch'
]
