"""The demo data generator: deterministic, idempotent, and its annotations
agree with the images (checked through pycocotools and the pixels)."""
import filecmp
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mmmetaformer.demo import CLASSES, generate_demo_data, render_scene
from tests.tool_scripts import load_tool

SMALL = dict(num_train=5, num_val=3, image_size=(64, 96), max_objects=4)


def _files(root):
    out = []
    for dirpath, _, names in os.walk(root):
        out += [osp.relpath(osp.join(dirpath, n), root) for n in names]
    return sorted(out)


@pytest.fixture(scope='module')
def demo_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('demo'))
    generate_demo_data(root, **SMALL)
    return root


def test_deterministic(demo_dir, tmp_path):
    generate_demo_data(str(tmp_path), **SMALL)
    files = _files(demo_dir)
    assert files == _files(str(tmp_path))
    assert len(files) == 1 + 2 + 2 * 8 + 8  # stamp, 2 json, coco, ade imgs
    _, mismatch, errors = filecmp.cmpfiles(demo_dir, str(tmp_path), files,
                                           shallow=False)
    assert not mismatch and not errors


def test_seed_changes_output(demo_dir, tmp_path):
    generate_demo_data(str(tmp_path), **dict(SMALL, seed=1))
    a = cv2.imread(osp.join(demo_dir, 'coco', 'train', '000000.jpg'))
    b = cv2.imread(osp.join(str(tmp_path), 'coco', 'train', '000000.jpg'))
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_split_is_prefix_of_larger_split(demo_dir, tmp_path):
    generate_demo_data(str(tmp_path), **dict(SMALL, num_train=3))
    for name in ('000000.jpg', '000002.jpg'):
        assert filecmp.cmp(osp.join(demo_dir, 'coco', 'train', name),
                           osp.join(str(tmp_path), 'coco', 'train', name),
                           shallow=False)


def test_idempotent_and_regenerates_on_change(tmp_path):
    root = str(tmp_path)
    assert generate_demo_data(root, **SMALL)['generated']
    assert not generate_demo_data(root, **SMALL)['generated']
    assert generate_demo_data(root, **SMALL, force=True)['generated']
    # Fewer images: the stale files of the larger run are removed (mmseg
    # lists the directories).
    assert generate_demo_data(root, **dict(SMALL, num_train=2))['generated']
    assert len(os.listdir(osp.join(root, 'ade', 'images', 'training'))) == 2
    assert len(os.listdir(osp.join(root, 'coco', 'train'))) == 2


@pytest.mark.parametrize('split', ['train', 'val'])
def test_coco_annotations_valid(demo_dir, split):
    num = SMALL['num_train'] if split == 'train' else SMALL['num_val']
    coco = COCO(osp.join(demo_dir, 'coco', 'annotations',
                         f'instances_{split}.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == \
        list(CLASSES)
    assert len(coco.getImgIds()) == num
    assert len(coco.getAnnIds()) >= num  # at least one object per image
    for img_id in coco.getImgIds():
        info = coco.loadImgs(img_id)[0]
        img = cv2.imread(osp.join(demo_dir, 'coco', split,
                                  info['file_name']))
        h, w = img.shape[:2]
        assert (w, h) == (info['width'], info['height'])
        union = np.zeros((h, w), np.int32)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img_id)):
            assert ann['iscrowd'] == 0
            assert ann['category_id'] in (1, 2, 3)
            poly = ann['segmentation']
            assert len(poly) == 1 and len(poly[0]) >= 6
            # pycocotools' rasterisation of the polygon ...
            rle = mask_utils.merge(mask_utils.frPyObjects(poly, h, w))
            mask = mask_utils.decode(rle).astype(bool)
            union += mask
            # ... matches the box (to a pixel) and the area (up to the
            # boundary pixels: the polygon runs through their centres).
            ys, xs = np.nonzero(mask)
            box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            x, y, bw, bh = ann['bbox']
            assert np.allclose(box, [x, y, x + bw, y + bh], atol=1)
            assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h
            assert abs(mask.sum() - ann['area']) <= bw + bh
            # The pixels inside are one colour plus noise, and differ from
            # the ring just outside: the mask is where the object is.
            inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3)))
            ring = cv2.dilate(mask.astype(np.uint8),
                              np.ones((5, 5))) - mask.astype(np.uint8)
            inside = img[inner.astype(bool)].astype(float)
            outside = img[ring.astype(bool)].astype(float)
            assert inside.std(0).max() < 15
            assert np.abs(inside.mean(0) - outside.mean(0)).sum() > 60
        assert union.max() <= 1  # objects do not overlap


@pytest.mark.parametrize('sub', ['training', 'validation'])
def test_ade_label_maps_valid(demo_dir, sub):
    img_dir = osp.join(demo_dir, 'ade', 'images', sub)
    ann_dir = osp.join(demo_dir, 'ade', 'annotations', sub)
    names = sorted(os.listdir(img_dir))
    assert [n.replace('.jpg', '.png') for n in names] == \
        sorted(os.listdir(ann_dir))
    for name in names:
        img = cv2.imread(osp.join(img_dir, name))
        label = cv2.imread(osp.join(ann_dir, name.replace('.jpg', '.png')),
                           cv2.IMREAD_UNCHANGED)
        assert label.dtype == np.uint8 and label.shape == img.shape[:2]
        values = set(np.unique(label).tolist())
        assert values <= {0, 1, 2, 3} and 0 in values and len(values) > 1
        count, comps = cv2.connectedComponents((label > 0).astype(np.uint8))
        for k in range(1, count):
            comp = comps == k
            assert len(np.unique(label[comp])) == 1  # one class per object
            inner = cv2.erode(comp.astype(np.uint8), np.ones((3, 3)))
            assert img[inner.astype(bool)].astype(float).std(0).max() < 15


def test_render_scene_shapes_match_polygons():
    rng = np.random.default_rng(3)
    img, shapes = render_scene(rng, 120, 90, max_objects=4)
    assert img.shape == (90, 120, 3) and img.dtype == np.uint8
    assert 1 <= len(shapes) <= 4
    for shape in shapes:
        canvas = np.zeros((90, 120), np.uint8)
        cv2.fillPoly(canvas, [shape.polygon], 1)
        assert np.array_equal(canvas.astype(bool), shape.mask)


def test_stamp_records_parameters(demo_dir):
    with open(osp.join(demo_dir, 'demo_data.json')) as f:
        stamp = json.load(f)
    assert stamp['num_train'] == SMALL['num_train']
    assert stamp['datasets'] == ['ade', 'coco']


@pytest.mark.parametrize('kwargs, name', [
    (dict(num_train=0), 'num_images'),
    (dict(image_size=(16, 64)), 'image_size'),
    (dict(image_size=(96, 64)), 'image_size'),
    (dict(max_objects=0), 'max_objects'),
    (dict(datasets=('voc', )), 'datasets'),
])
def test_bad_arguments(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        generate_demo_data(str(tmp_path), **kwargs)


def test_cli(tmp_path):
    cli = load_tool('generate_demo_data.py')
    cli.main(['--out', str(tmp_path), '--num-train', '2', '--num-val', '1',
              '--image-size', '64', '80', '--datasets', 'ade'])
    assert sorted(os.listdir(tmp_path)) == ['ade', 'demo_data.json']
    assert len(os.listdir(tmp_path / 'ade' / 'images' / 'training')) == 2
