"""Configs of the MetaFormer baselines (PoolFormerV2, IdentityFormer,
RandFormer, ConvFormer, CAFormer): one per task and arch, each changing only
the backbone and the neck's input channels; one training iteration of every
detector / segmentor type of every family on generated images."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmmetaformer.models.backbones import (CAFormer, ConvFormer,
                                           IdentityFormer, PoolFormerV2,
                                           RandFormer)
from .utils import REPO_ROOT, make_tiny_demo_data, train_one_iter

FAMILIES = [PoolFormerV2, IdentityFormer, RandFormer, ConvFormer, CAFormer]
TASKS = ('retinanet', 'mask_rcnn', 'semfpn')


def config_path(task, cls, arch):
    return f'configs/{task}_{cls.__name__.lower()}_{arch}.py'


@pytest.mark.parametrize('cls', FAMILIES, ids=lambda c: c.__name__)
@pytest.mark.parametrize('task', TASKS)
def test_every_arch_has_a_config(task, cls):
    first = None
    for arch in cls.arch_settings:
        path = config_path(task, cls, arch)
        assert osp.isfile(osp.join(REPO_ROOT, path)), path
        cfg = Config.fromfile(osp.join(REPO_ROOT, path))
        backbone = cfg.model.backbone
        assert (backbone.type, backbone.arch) == (cls.__name__, arch)
        assert backbone.init_cfg == dict(type='Pretrained',
                                         checkpoint=cls.imagenet_url(arch))
        out_indices = (1, 2, 3) if task == 'retinanet' else (0, 1, 2, 3)
        assert tuple(backbone.out_indices) == out_indices
        dims = cls.parse_arch(arch)['embed_dims']
        assert list(cfg.model.neck.in_channels) == [
            dims[i] for i in out_indices
        ]
        # the PoolFormer recipe: no drop path in the dense runs, default
        # output norms
        assert 'drop_path_rate' not in backbone and 'out_norm' not in backbone
        if first is None:
            first = cfg
        else:  # only the backbone arch / checkpoint and the neck differ
            for key in ('optim_wrapper', 'param_scheduler', 'train_cfg',
                        'train_dataloader'):
                assert cfg[key] == first[key], key


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    return make_tiny_demo_data(tmp_path_factory.mktemp('tiny_demo'))


@pytest.mark.parametrize('cls', FAMILIES, ids=lambda c: c.__name__)
@pytest.mark.parametrize('task', TASKS)
def test_one_training_iteration(task, cls, tiny_data, tmp_path):
    """One iteration of the smallest arch's config on generated images:
    finite loss, every part of the model (backbone included) updated."""
    arch = next(iter(cls.arch_settings))
    result = train_one_iter(config_path(task, cls, arch), tiny_data, tmp_path)
    assert result.max_change['backbone'] > 0
    assert set(result.max_change) >= {'backbone', 'neck'}
