"""Writers of the demo data sets: COCO-format instance detection and
ADE20K-format semantic segmentation of synthetic shapes (see
:mod:`mmmetaformer.demo.shapes`).

Layout written under ``out_dir``::

    coco/annotations/instances_{train,val}.json
    coco/{train,val}/<000000>.jpg
    ade/images/{training,validation}/<000000>.jpg
    ade/annotations/{training,validation}/<000000>.png   (0 = background,
                                                          1..3 = CLASSES)
    demo_data.json                                       (parameters used)

Every image depends only on ``(seed, dataset, split, index)``, so the output
is byte-identical for the same arguments, and a split of N images is a prefix
of a split of M > N images.
"""
import json
import os
import os.path as osp
from typing import Dict, Tuple

import cv2
import numpy as np

from .shapes import CLASSES, mask_to_bbox, polygon_to_coco, render_scene

#: Bumped whenever the generator's output changes, so that cached data sets
#: written by an older version are regenerated.
GENERATOR_VERSION = 1

_DATASET_IDS = {'coco': 0, 'ade': 1}
_SPLIT_IDS = {'train': 0, 'val': 1}
_ADE_SPLIT_DIRS = {'train': 'training', 'val': 'validation'}


def _scene_rng(seed: int, dataset: str, split: str,
               index: int) -> np.random.Generator:
    return np.random.default_rng(
        [seed, _DATASET_IDS[dataset], _SPLIT_IDS[split], index])


def _image_size(rng: np.random.Generator,
                image_size: Tuple[int, int]) -> Tuple[int, int]:
    low, high = image_size
    width, height = rng.integers(low, high + 1, size=2)
    return int(width), int(height)


def _check_args(num_images: int, image_size: Tuple[int, int],
                max_objects: int) -> None:
    if int(num_images) < 1:
        raise ValueError(f'num_images must be >= 1, got {num_images}')
    if len(image_size) != 2 or not 32 <= image_size[0] <= image_size[1]:
        raise ValueError('image_size must be (min_side, max_side) with '
                         f'32 <= min_side <= max_side, got {image_size}')
    if int(max_objects) < 1:
        raise ValueError(f'max_objects must be >= 1, got {max_objects}')


def _remove_stale(directory: str, num_images: int) -> None:
    """Remove ``<index>.jpg/png`` files with ``index >= num_images`` left by
    an earlier, larger generation (mmseg lists a directory's files)."""
    for name in os.listdir(directory):
        stem, ext = osp.splitext(name)
        if (ext in ('.jpg', '.png') and len(stem) == 6 and stem.isdigit()
                and int(stem) >= num_images):
            os.remove(osp.join(directory, name))


def _write_jpg(path: str, img: np.ndarray) -> None:
    if not cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f'could not write {path}')


def _scenes(kind: str, split: str, splits, num_images: int, seed: int,
            image_size: Tuple[int, int], max_objects: int):
    """Check the arguments of a split, then yield ``(index, image,
    shapes)`` for each of its scenes (deterministic in ``kind``, ``split``,
    ``seed`` and the index).

    Raises:
        ValueError: If ``split`` is not in ``splits`` or another argument is
            out of range (checked before anything is written).
    """
    if split not in splits:
        raise ValueError(f'split must be one of {tuple(splits)}, '
                         f'got {split!r}')
    _check_args(num_images, image_size, max_objects)
    return _render_scenes(kind, split, num_images, seed, image_size,
                          max_objects)


def _render_scenes(kind, split, num_images, seed, image_size, max_objects):
    for index in range(num_images):
        rng = _scene_rng(seed, kind, split, index)
        width, height = _image_size(rng, image_size)
        img, shapes = render_scene(rng, width, height, max_objects)
        yield index, img, shapes


def generate_coco_split(root: str,
                        split: str,
                        num_images: int,
                        seed: int = 0,
                        image_size: Tuple[int, int] = (96, 128),
                        max_objects: int = 4) -> str:
    """Write one split of the COCO-format shapes detection set.

    Args:
        root (str): The COCO-style root (``<out_dir>/coco``).
        split (str): ``'train'`` or ``'val'``.
        num_images (int): Number of images.
        seed (int): Base seed.
        image_size (tuple[int, int]): Width and height are each drawn
            uniformly from ``[min, max]``.
        max_objects (int): Maximum objects per image.

    Returns:
        str: The path of the annotation file
        (``annotations/instances_<split>.json``), with polygon masks,
        ``iscrowd=0`` and category ids 1..3 for :data:`CLASSES`.
    """
    scenes = _scenes('coco', split, _SPLIT_IDS, num_images, seed,
                     image_size, max_objects)
    os.makedirs(osp.join(root, split), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, annotations = [], []
    for index, img, shapes in scenes:
        height, width = img.shape[:2]
        file_name = f'{index:06d}.jpg'
        _write_jpg(osp.join(root, split, file_name), img)
        image_id = index + 1
        images.append(dict(id=image_id, file_name=file_name, width=width,
                           height=height))
        for shape in shapes:
            annotations.append(
                dict(id=len(annotations) + 1,
                     image_id=image_id,
                     category_id=shape.label + 1,
                     bbox=mask_to_bbox(shape.mask),
                     area=float(shape.mask.sum()),
                     segmentation=[polygon_to_coco(shape.polygon)],
                     iscrowd=0))
    _remove_stale(osp.join(root, split), num_images)
    coco = dict(
        info=dict(description='mmmetaformer synthetic shapes (demo)',
                  version=str(GENERATOR_VERSION)),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=[dict(id=i + 1, name=name, supercategory='shape')
                    for i, name in enumerate(CLASSES)])
    ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
    with open(ann_file, 'w', encoding='utf-8') as f:
        json.dump(coco, f)
    return ann_file


def generate_ade_split(root: str,
                       split: str,
                       num_images: int,
                       seed: int = 0,
                       image_size: Tuple[int, int] = (96, 128),
                       max_objects: int = 4) -> str:
    """Write one split of the ADE20K-format shapes segmentation set.

    Label maps are uint8 PNGs with 0 = background and ``k + 1`` for
    ``CLASSES[k]``: as in ADE20K, 0 is "other" and becomes the ignore index
    with ``reduce_zero_label=True``.

    Args:
        root (str): The ADE-style root (``<out_dir>/ade``).
        split (str): ``'train'`` (written to ``training``) or ``'val'``
            (``validation``).
        num_images, seed, image_size, max_objects: As for
            :func:`generate_coco_split`.

    Returns:
        str: The directory of the label maps.
    """
    scenes = _scenes('ade', split, _ADE_SPLIT_DIRS, num_images, seed,
                     image_size, max_objects)
    sub = _ADE_SPLIT_DIRS[split]
    img_dir = osp.join(root, 'images', sub)
    ann_dir = osp.join(root, 'annotations', sub)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    for index, img, shapes in scenes:
        label = np.zeros(img.shape[:2], np.uint8)
        for shape in shapes:
            label[shape.mask] = shape.label + 1
        _write_jpg(osp.join(img_dir, f'{index:06d}.jpg'), img)
        if not cv2.imwrite(osp.join(ann_dir, f'{index:06d}.png'), label):
            raise OSError(f'could not write a label map to {ann_dir}')
    _remove_stale(img_dir, num_images)
    _remove_stale(ann_dir, num_images)
    return ann_dir


def generate_demo_data(out_dir: str,
                       num_train: int = 400,
                       num_val: int = 100,
                       seed: int = 0,
                       image_size: Tuple[int, int] = (96, 128),
                       max_objects: int = 4,
                       datasets: Tuple[str, ...] = ('coco', 'ade'),
                       force: bool = False) -> Dict[str, object]:
    """Write the demo data sets (idempotent).

    If ``<out_dir>/demo_data.json`` records the same parameters (and
    generator version) the data are left as they are, unless ``force``.

    Args:
        out_dir (str): Output directory (e.g. ``data/demo``).
        num_train (int): Training images per data set.
        num_val (int): Validation images per data set.
        seed (int): Base seed.
        image_size (tuple[int, int]): Range of image width and height.
        max_objects (int): Maximum objects per image.
        datasets (tuple[str]): Any of ``'coco'`` and ``'ade'``.
        force (bool): Regenerate even if the recorded parameters match.

    Returns:
        dict: The recorded parameters plus ``'generated'`` (False when the
        existing data were kept).
    """
    unknown = [d for d in datasets if d not in _DATASET_IDS]
    if unknown or not datasets:
        raise ValueError(f'datasets must be a non-empty subset of '
                         f'{tuple(_DATASET_IDS)}, got {datasets!r}')
    params = dict(version=GENERATOR_VERSION, num_train=int(num_train),
                  num_val=int(num_val), seed=int(seed),
                  image_size=[int(v) for v in image_size],
                  max_objects=int(max_objects),
                  datasets=sorted(datasets))
    stamp = osp.join(out_dir, 'demo_data.json')
    if not force and osp.isfile(stamp):
        with open(stamp, encoding='utf-8') as f:
            if json.load(f) == params:
                return dict(params, generated=False)
    if osp.isfile(stamp):
        os.remove(stamp)  # an interrupted run must not look complete
    for split, num in (('train', num_train), ('val', num_val)):
        if 'coco' in datasets:
            generate_coco_split(osp.join(out_dir, 'coco'), split, num, seed,
                                image_size, max_objects)
        if 'ade' in datasets:
            generate_ade_split(osp.join(out_dir, 'ade'), split, num, seed,
                               image_size, max_objects)
    with open(stamp, 'w', encoding='utf-8') as f:
        json.dump(params, f, indent=2)
    return dict(params, generated=True)
