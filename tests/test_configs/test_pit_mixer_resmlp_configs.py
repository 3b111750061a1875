"""Configs of PiT, MLP-Mixer, ResMLP (PoolFormer-recipe baselines, PiT-S
Deformable DETR and UperNet) and the UperNet 160k ConvFormer/CAFormer
settings: recipes, channels, parameter counts, and one training iteration
of each model type (building every config is checked in
``test_configs.py``)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from mmmetaformer.models.backbones import MLPMixer, PiT, ResMLP
from .utils import (REPO_ROOT, drop_pretrained, make_tiny_demo_data,
                    train_one_iter)

BASELINES = {  # config suffix -> (class, arch)
    'pit_ti': (PiT, 'ti'), 'pit_xs': (PiT, 'xs'), 'pit_s': (PiT, 's'),
    'mixer_b16': (MLPMixer, 'b16'), 'resmlp_s12': (ResMLP, 's12'),
    'resmlp_s24': (ResMLP, 's24'),
}
# quoted UperNet totals, M parameters (S18: PolyNeXt README, third-party;
# S36/M36: as quoted in issue 13, unverified)
UPERNET_MB = {'convformer_s18': 54, 'caformer_s18': 54, 'convformer_s36': 67,
              'caformer_s36': 67, 'convformer_m36': 85, 'caformer_m36': 84}


def _load(path):
    return Config.fromfile(osp.join(REPO_ROOT, path))


def _backbone_channels(cls, arch, out_indices):
    with torch.device('meta'):
        return list(cls(arch, out_indices=out_indices).out_channels)


@pytest.mark.parametrize('task', ['retinanet', 'mask_rcnn', 'semfpn'])
@pytest.mark.parametrize('name', sorted(BASELINES))
def test_poolformer_recipe_baselines(task, name):
    cls, arch = BASELINES[name]
    cfg = _load(f'configs/{task}_{name}.py')
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.arch) == (cls.__name__, arch)
    assert backbone.init_cfg.checkpoint == cls.imagenet_url(arch)
    stages = (1, 2, 3) if task == 'retinanet' else (0, 1, 2, 3)
    assert tuple(backbone.out_indices) == stages
    assert cfg.model.neck.in_channels == _backbone_channels(cls, arch, stages)
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'AdamW'
    assert (optimizer.lr, optimizer.weight_decay) == (
        (1e-4, 1e-4) if task == 'retinanet' else (2e-4, 1e-4))


@pytest.mark.parametrize('name', sorted(UPERNET_MB) + ['pit_s'])
def test_upernet_160k(name):
    cfg = _load(f'configs/upernet_{name}.py')
    backbone = cfg.model.backbone
    assert set(backbone) == {'type', 'arch', 'out_indices', 'init_cfg'}
    cls = MODELS.get(f'mmmetaformer.{backbone.type}')
    channels = _backbone_channels(cls, backbone.arch, (0, 1, 2, 3))
    assert cfg.model.decode_head.in_channels == channels
    assert cfg.model.auxiliary_head.in_channels == channels[2]
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs = 16
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == (
        'AdamW', 6e-5, 0.01)
    if name in UPERNET_MB:
        init_default_scope(cfg.default_scope)
        with torch.device('meta'):
            model = MODELS.build(drop_pretrained(cfg.model))
        total = sum(p.numel() for p in model.parameters())
        assert round(total / 1e6) == UPERNET_MB[name]


def test_deformable_detr_pit_s_recipe():
    cfg = _load('configs/deformable_detr_pit_s.py')
    assert cfg.model.type == 'DeformableDETR'
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.arch) == ('PiT', 's')
    assert set(backbone) == {'type', 'arch', 'out_indices', 'init_cfg'}
    assert cfg.model.neck.in_channels == [144, 288, 576]
    assert cfg.model.neck.num_outs == 4
    scales = [(400 - 16 * i, 1333) for i in range(11)]
    assert scales[-1] == (240, 1333)
    branches = cfg.train_dataloader.dataset.pipeline[3].transforms
    assert branches[0][0].scales == scales
    assert branches[1][-1].scales == scales
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == (
        'AdamW', 2e-4, 1e-4)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult == 0.1
    assert cfg.train_cfg.max_epochs == 50
    (step, ) = cfg.param_scheduler
    assert (step.milestones, step.gamma) == ([30], 0.1)
    assert cfg.train_dataloader.batch_size * 8 == 16
    assert cfg.auto_scale_lr.base_batch_size == 16


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    return make_tiny_demo_data(tmp_path_factory.mktemp('tiny_demo'))


def _runnable_copy(path, tmp_path):
    """Shrink the DETR scales to the tiny images (the helper shrinks
    ``scale`` but not ``scales``) and make its crop fit them."""
    cfg = _load(path)
    for transform in cfg.train_dataloader.dataset.pipeline:
        if transform.type == 'RandomChoice':
            for branch in transform.transforms:
                for step in branch:
                    if step.type == 'RandomChoiceResize':
                        step.scales = [(56, 96), (64, 96)]
                    if step.type == 'RandomCrop':
                        step.crop_size = (40, 56)
    out = tmp_path / osp.basename(path)
    cfg.dump(str(out))
    return str(out)


@pytest.mark.parametrize('config, parts', [
    ('configs/retinanet_pit_ti.py', {'backbone', 'neck', 'bbox_head'}),
    ('configs/mask_rcnn_resmlp_s12.py',
     {'backbone', 'neck', 'rpn_head', 'roi_head'}),
    ('configs/semfpn_mixer_b16.py', {'backbone', 'neck', 'decode_head'}),
    ('configs/deformable_detr_pit_s.py',
     {'backbone', 'neck', 'encoder', 'decoder', 'bbox_head', 'query_embedding',
      'level_embed', 'reference_points_fc'}),
    ('configs/upernet_convformer_s18.py',
     {'backbone', 'decode_head', 'auxiliary_head'}),
])
def test_one_training_iteration(config, parts, tiny_data, tmp_path):
    still = ('level_embed', ) if 'detr' in config else ()
    result = train_one_iter(_runnable_copy(config, tmp_path), tiny_data,
                            tmp_path / 'work', still_parts=still)
    assert set(result.max_change) == parts
