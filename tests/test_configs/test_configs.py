"""Every config parses and builds; the bases carry the PoolFormer recipe and
take their data roots from one place; one training iteration of RetinaNet,
Mask R-CNN and Semantic FPN with PoolFormer-S12 runs and learns."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from .utils import (REPO_ROOT, drop_pretrained, make_tiny_demo_data,
                    train_one_iter)

CONFIG_DIR = osp.join(REPO_ROOT, 'configs')
ALL_CONFIGS = sorted(
    osp.relpath(p, REPO_ROOT)
    for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    if '_base_' not in osp.relpath(p, CONFIG_DIR).split(osp.sep))
BASES = {
    'retinanet': 'configs/_base_/retinanet_fpn_1x_coco.py',
    'mask_rcnn': 'configs/_base_/mask_rcnn_fpn_1x_coco.py',
    'semfpn': 'configs/_base_/semfpn_40k_ade20k.py',
}


def _load(path):
    return Config.fromfile(osp.join(REPO_ROOT, path))


def _dataset_roots(cfg):
    roots = []
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[key].dataset
        while 'dataset' in dataset:  # wrappers
            dataset = dataset.dataset
        roots.append(dataset.data_root)
    return roots


def test_configs_found():
    names = {osp.basename(p) for p in ALL_CONFIGS}
    for task in ('retinanet', 'mask_rcnn', 'semfpn'):
        for arch in ('s12', 's24', 's36', 'm36', 'm48'):
            assert f'{task}_poolformer_{arch}.py' in names
    assert 'retinanet_poolformer_s12_demo.py' in names


@pytest.mark.parametrize('path', ALL_CONFIGS)
def test_config_builds(path):
    """The config parses, its model builds (without the ImageNet download)
    and the backbone's outputs have the channels the neck (or, without a
    neck, the decode head) expects."""
    cfg = _load(path)
    assert cfg.custom_imports.imports[0] == 'mmmetaformer'
    assert not cfg.custom_imports.allow_failed_imports
    backbone_cfg = cfg.model.backbone
    init_cfg = backbone_cfg.get('init_cfg')
    if init_cfg is not None:  # a pretrained init must name a checkpoint
        assert init_cfg.type == 'Pretrained' and init_cfg.checkpoint
    init_default_scope(cfg.default_scope)
    model = MODELS.build(drop_pretrained(cfg.model))
    model.eval()
    with torch.no_grad():
        feats = model.backbone(torch.rand(1, 3, 64, 96))
    consumer = cfg.model.get('neck') or cfg.model.decode_head
    assert [f.shape[1] for f in feats] == list(consumer.in_channels)
    widths = [96 // 2**(i + 2) for i in range(4)]
    if backbone_cfg.type == 'PiT':  # official stem: kernel 16, stride 8,
        grid = (96 - 16) // 8 + 1  # no padding; then ceil(/2) per stage
        widths = [2 * grid, grid, -(-grid // 2), -(-grid // 4)]
    assert [f.shape[-1] for f in feats] == \
        [widths[i] for i in backbone_cfg.out_indices]


def test_retinanet_base_recipe():
    cfg = _load(BASES['retinanet'])
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == \
        ('AdamW', 1e-4, 1e-4)
    assert 'momentum' not in optimizer
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end) == \
        ('LinearLR', 0.001, 500)
    assert steps.milestones == [8, 11] and cfg.train_cfg.max_epochs == 12
    resize = [t for t in cfg.train_dataloader.dataset.pipeline
              if t.type == 'Resize'][0]
    assert resize.scale == (1333, 800) and resize.keep_ratio
    assert cfg.model.data_preprocessor.pad_size_divisor == 32
    assert cfg.model.neck.start_level == 0
    assert cfg.model.neck.add_extra_convs == 'on_input'
    assert cfg.auto_scale_lr.base_batch_size == 16
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs


RETINANET_CONFIGS = [
    p for p in ALL_CONFIGS if osp.basename(p).startswith('retinanet_')
]


@pytest.mark.parametrize('path', RETINANET_CONFIGS)
def test_retinanet_keeps_zero_area_boxes(path):
    """mmdet 2.x (the official PoolFormer / MetaFormer code) keeps decoded
    boxes of zero width or height; mmdet 3.x drops them when
    ``min_bbox_size >= 0`` (its RetinaNet default is 0), which loses
    detections against the official pipeline (test_retinanet_poolformer_s12
    in tests/test_pipelines). Every
    single-stage config turns the filter off, and the head then keeps such
    a box; the ResT configs (detectron2 rows) drop empty boxes after NMS
    and clipping instead, in Detectron2RetinaHead
    (test_retinanet_rest_small_detectron2 in tests/test_pipelines)."""
    cfg = _load(path)
    assert cfg.model.type == 'RetinaNet'
    assert cfg.model.test_cfg.min_bbox_size == -1
    assert cfg.model.test_cfg.score_thr == 0.05  # unchanged mmdet default
    if '_rest_' in path:
        assert cfg.model.bbox_head.type == 'Detectron2RetinaHead'
        assert cfg.model.bbox_head.bbox_coder.clip_border is False


def test_retinanet_head_keeps_a_zero_width_box():
    from mmengine.structures import InstanceData
    init_default_scope('mmdet')
    cfg = _load(BASES['retinanet'])
    head_cfg = dict(cfg.model.bbox_head, test_cfg=cfg.model.test_cfg)
    head = MODELS.build(head_cfg)
    results = InstanceData(
        bboxes=torch.tensor([[10., 10., 10., 30.], [0., 0., 20., 20.]]),
        scores=torch.tensor([0.9, 0.8]), labels=torch.tensor([1, 2]))
    kept = head._bbox_post_process(
        results, cfg.model.test_cfg, rescale=False, with_nms=True,
        img_meta=dict(img_shape=(64, 64)))
    assert kept.bboxes.tolist() == results.bboxes.tolist()


def test_mask_rcnn_base_recipe():
    cfg = _load(BASES['mask_rcnn'])
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == \
        ('AdamW', 2e-4, 1e-4)
    assert cfg.model.neck.get('start_level', 0) == 0
    assert cfg.model.neck.num_outs == 5
    assert cfg.param_scheduler[1].milestones == [8, 11]


def test_semfpn_base_recipe():
    cfg = _load(BASES['semfpn'])
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == \
        ('AdamW', 2e-4, 1e-4)
    (poly, ) = cfg.param_scheduler
    assert (poly.type, poly.power, poly.eta_min, poly.end) == \
        ('PolyLR', 0.9, 0.0, 40000)
    assert cfg.train_cfg.max_iters == 40000
    assert cfg.train_cfg.val_interval == 4000
    assert cfg.train_dataloader.batch_size == 4  # x 8 GPUs
    head = cfg.model.decode_head
    assert (head.channels, head.num_classes, head.norm_cfg.type) == \
        (128, 150, 'SyncBN')
    assert cfg.model.pretrained is None
    test_types = [t.type for t in cfg.test_dataloader.dataset.pipeline]
    assert test_types[1:3] == ['Resize', 'ResizeToMultiple']
    assert cfg.test_dataloader.dataset.pipeline[1].scale == (2048, 512)


@pytest.mark.parametrize('task', sorted(BASES))
def test_data_root_from_one_environment_variable(task, monkeypatch):
    """Setting the documented variable moves every dataloader (and the COCO
    evaluators) of a variant config."""
    var = ('MMMETAFORMER_ADE_ROOT'
           if task == 'semfpn' else 'MMMETAFORMER_COCO_ROOT')
    default = _load(f'configs/{task}_poolformer_s12.py')
    monkeypatch.setenv(var, '/elsewhere/dataset/')
    cfg = _load(f'configs/{task}_poolformer_s12.py')
    assert _dataset_roots(default) == [default.data_root] * 3
    assert _dataset_roots(cfg) == ['/elsewhere/dataset/'] * 3
    if task != 'semfpn':
        for key in ('val_evaluator', 'test_evaluator'):
            assert cfg[key].ann_file == default[key].ann_file.replace(
                default.data_root, '/elsewhere/dataset/')
            assert cfg[key].ann_file.startswith('/elsewhere/dataset/')


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    return make_tiny_demo_data(tmp_path_factory.mktemp('tiny_demo'))


@pytest.mark.parametrize('path', [
    'configs/retinanet_poolformer_s12.py',
    'configs/mask_rcnn_poolformer_s12.py',
    'configs/semfpn_poolformer_s12.py',
])
def test_one_training_iteration(path, tiny_data, tmp_path):
    result = train_one_iter(path, tiny_data, tmp_path)
    expected_parts = {
        'retinanet': {'backbone', 'neck', 'bbox_head'},
        'mask_rcnn': {'backbone', 'neck', 'rpn_head', 'roi_head'},
        'semfpn': {'backbone', 'neck', 'decode_head'},
    }[osp.basename(path).split('_poolformer')[0]]
    assert set(result.max_change) == expected_parts
    if 'mask_rcnn' in path:
        assert {'loss_rpn_cls', 'loss_bbox', 'loss_mask'} <= \
            set(result.log_vars)
