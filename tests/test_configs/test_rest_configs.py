"""ResT / ResTv2 configs: the published recipes as ported, and one training
iteration of each model type (building every config is checked in
``test_configs.py``)."""
import os.path as osp

import pytest
from mmengine.config import Config

from .utils import REPO_ROOT, make_tiny_demo_data, train_one_iter

V1_DIMS = {'lite': [64, 128, 256, 512], 'small': [64, 128, 256, 512],
           'base': [96, 192, 384, 768], 'large': [96, 192, 384, 768]}
V1_DROP_PATH = {'lite': 0.1, 'small': 0.1, 'base': 0.2, 'large': 0.2}
V2_DROP_PATH = {'tiny': 0.1, 'small': 0.2, 'base': 0.3}
BGR_CAFFE = dict(mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0],
                 bgr_to_rgb=False)
RGB_IMAGENET = dict(mean=[123.675, 116.28, 103.53],
                    std=[58.395, 57.12, 57.375], bgr_to_rgb=True)


def _load(path):
    return Config.fromfile(osp.join(REPO_ROOT, path))


def _transform(pipeline, name):
    (found, ) = [t for t in pipeline if t.type == name]
    return found


def _check_preprocessor(cfg, expected):
    preprocessor = cfg.model.data_preprocessor
    for key, value in expected.items():
        assert preprocessor[key] == value, key


def _check_checkpoint(backbone, name):
    assert backbone.init_cfg.type == 'Pretrained'
    assert backbone.init_cfg.checkpoint.endswith('/' + name)


@pytest.mark.parametrize('task', ['retinanet', 'mask_rcnn'])
@pytest.mark.parametrize('arch', ['small', 'base'])
def test_v1_detection_recipe(task, arch):
    cfg = _load(f'configs/{task}_rest_{arch}.py')
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.arch) == ('ResT', arch)
    assert backbone.drop_path_rate == V1_DROP_PATH[arch]
    _check_checkpoint(backbone, f'rest_{arch}.pth')
    stages = (1, 2, 3) if task == 'retinanet' else (0, 1, 2, 3)
    assert tuple(backbone.out_indices) == stages
    # nothing frozen: the only setting with which the official backbone
    # builds (its _freeze_backbone raises for the published FREEZE_AT=2;
    # see the base config's comment)
    assert backbone.get('frozen_stages', -1) == -1
    assert cfg.model.neck.in_channels == [V1_DIMS[arch][i] for i in stages]
    if task == 'retinanet':  # detectron2's LastLevelP6P7: P7 = conv(relu(P6))
        assert cfg.model.neck.add_extra_convs == 'on_input'
        assert cfg.model.neck.relu_before_extra_convs
    optim = cfg.optim_wrapper
    assert optim.optimizer.type == 'AdamW'
    assert (optim.optimizer.lr, optim.optimizer.weight_decay) == (1e-4, 0.05)
    assert optim.paramwise_cfg.norm_decay_mult == 0.0
    if task == 'mask_rcnn':
        assert optim.clip_grad == dict(max_norm=0.01, norm_type=2)
    else:
        assert optim.get('clip_grad') is None
    _check_preprocessor(cfg, BGR_CAFFE)  # as published (detectron2 default)
    pipeline = cfg.train_dataloader.dataset.pipeline
    resize = _transform(pipeline, 'RandomChoiceResize')
    assert [s[1] for s in resize.scales] == list(range(640, 801, 32))
    assert all(s[0] == 1333 for s in resize.scales) and resize.keep_ratio
    crops = [t for t in pipeline if t.type == 'RandomCrop']
    if task == 'mask_rcnn':
        (crop, ) = crops
        assert (crop.crop_type, tuple(crop.crop_size)) == ('relative',
                                                           (0.9, 0.9))
        assert pipeline.index(crop) < pipeline.index(resize)
    else:
        assert not crops
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR',
                                                              0.001, 1000)
    assert steps.milestones == [8, 11] and cfg.train_cfg.max_epochs == 12


@pytest.mark.parametrize('arch', ['tiny', 'small', 'base'])
def test_v2_mask_rcnn_3x_recipe(arch):
    cfg = _load(f'configs/mask_rcnn_3x_restv2_{arch}.py')
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.arch) == ('ResTV2', arch)
    assert backbone.drop_path_rate == V2_DROP_PATH[arch]
    assert tuple(backbone.out_indices) == (0, 1, 2, 3)
    _check_checkpoint(backbone, f'restv2_{arch}_224.pth')
    assert cfg.model.neck.in_channels == [96, 192, 384, 768]
    optim = cfg.optim_wrapper
    assert optim.type == 'AmpOptimWrapper'
    assert (optim.optimizer.lr, optim.optimizer.weight_decay) == (1e-4, 0.05)
    assert optim.clip_grad == dict(max_norm=0.01, norm_type=2)
    _check_preprocessor(cfg, RGB_IMAGENET)
    pipeline = cfg.train_dataloader.dataset.pipeline
    resize = _transform(pipeline, 'RandomChoiceResize')
    assert [s[1] for s in resize.scales] == [
        480, 512, 534, 576, 640, 672, 704, 736, 768, 800]
    assert _transform(pipeline, 'RandomCrop').crop_type == 'relative'
    # 270k iterations of 16 images with steps at 210k / 250k, in epochs of
    # 117266 / 16 iterations
    iters_per_epoch = 117266 / 16
    assert abs(cfg.train_cfg.max_epochs * iters_per_epoch - 270000) < 3000
    steps = cfg.param_scheduler[-1].milestones
    assert [round(s * iters_per_epoch, -4) for s in steps] == [210000, 250000]


@pytest.mark.parametrize('arch', ['tiny', 'small', 'base'])
def test_v2_upernet_recipe(arch):
    cfg = _load(f'configs/upernet_restv2_{arch}.py')
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.arch) == ('ResTV2', arch)
    assert set(backbone) == {'type', 'arch', 'out_indices', 'drop_path_rate',
                             'init_cfg'}  # nothing left of the Swin base
    assert backbone.drop_path_rate == V2_DROP_PATH[arch]
    assert cfg.model.decode_head.type == 'UPerHead'
    # the official AlignResize (evidence in the base config's comment)
    assert [t.type for t in cfg.test_dataloader.dataset.pipeline] == [
        'LoadImageFromFile', 'Resize', 'ResizeToMultiple', 'LoadAnnotations',
        'PackSegInputs']
    assert cfg.test_dataloader.dataset.pipeline[1].scale == (2048, 512)
    assert cfg.model.decode_head.in_channels == [96, 192, 384, 768]
    assert cfg.model.decode_head.channels == 512
    assert (cfg.model.auxiliary_head.in_channels,
            cfg.model.auxiliary_head.loss_decode.loss_weight) == (384, 0.4)
    assert cfg.train_cfg.max_iters == 160000
    warmup, poly = cfg.param_scheduler
    assert (warmup.start_factor, warmup.end) == (1e-6, 1500)
    assert (poly.type, poly.power, poly.eta_min) == ('PolyLR', 1.0, 0.0)
    assert cfg.train_dataloader.batch_size == 2
    optimizer = cfg.optim_wrapper.optimizer
    if arch == 'tiny':
        assert (optimizer.lr, optimizer.weight_decay) == (6e-5, 0.01)
        assert cfg.optim_wrapper.paramwise_cfg.custom_keys.norm.decay_mult \
            == 0.0
    else:
        assert (optimizer.lr, optimizer.weight_decay) == (1.5e-4, 0.05)
        assert cfg.optim_wrapper.constructor == \
            'LayerDecayOptimWrapperConstructor'
        assert cfg.optim_wrapper.paramwise_cfg == dict(
            decay_rate=0.9, decay_type='stage_wise')


@pytest.mark.parametrize('arch', ['lite', 'small', 'base', 'large'])
def test_v1_semfpn(arch):
    cfg = _load(f'configs/semfpn_rest_{arch}.py')
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.arch) == ('ResT', arch)
    assert backbone.drop_path_rate == V1_DROP_PATH[arch]
    assert cfg.model.neck.in_channels == V1_DIMS[arch]
    assert cfg.train_cfg.max_iters == 40000
    _check_preprocessor(cfg, RGB_IMAGENET)


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    return make_tiny_demo_data(tmp_path_factory.mktemp('tiny_demo'))


def _runnable_copy(path, tmp_path):
    """The config with its multi-scale sizes shrunk to the tiny images (the
    helper shrinks ``scale`` but not ``scales``), the relative crop made
    absolute (the helper overwrites every ``crop_size`` with pixels) and, on
    CPU, AMP replaced by the plain wrapper (mmengine's AmpOptimWrapper needs
    a GPU)."""
    import torch
    cfg = _load(path)
    for transform in cfg.train_dataloader.dataset.pipeline:
        if transform.type == 'RandomChoiceResize':
            transform.scales = [(96, 56), (96, 64)]
        if transform.type == 'RandomCrop' and 'crop_type' in transform:
            # mmdet's relative crop (mmseg's RandomCrop has no crop_type)
            transform.crop_type = 'absolute'
    if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper' and \
            not torch.cuda.is_available():
        cfg.optim_wrapper.type = 'OptimWrapper'
    out = tmp_path / osp.basename(path)
    cfg.dump(str(out))
    return str(out)


@pytest.mark.parametrize('config, parts', [
    ('configs/retinanet_rest_small.py', {'backbone', 'neck', 'bbox_head'}),
    ('configs/mask_rcnn_rest_small.py',
     {'backbone', 'neck', 'rpn_head', 'roi_head'}),
    ('configs/mask_rcnn_3x_restv2_tiny.py',
     {'backbone', 'neck', 'rpn_head', 'roi_head'}),
    ('configs/semfpn_rest_lite.py', {'backbone', 'neck', 'decode_head'}),
    ('configs/upernet_restv2_small.py',
     {'backbone', 'decode_head', 'auxiliary_head'}),
])
def test_one_training_iteration(config, parts, tiny_data, tmp_path):
    path = _runnable_copy(config, tmp_path)
    result = train_one_iter(path, tiny_data, tmp_path / 'work')
    assert set(result.max_change) == parts
