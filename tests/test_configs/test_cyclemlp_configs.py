"""CycleMLP configs: the PVT-style recipe and one training iteration of each
model type (building every config is checked in ``test_configs.py``)."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmmetaformer.models.backbones.cyclemlp import IMAGENET_URL
from .utils import REPO_ROOT, make_tiny_demo_data, train_one_iter

ARCHS = ('b1', 'b2', 'b3', 'b4', 'b5')
DIMS = {a: [64, 128, 320, 512] for a in ARCHS[:4]}
DIMS['b5'] = [96, 192, 384, 768]
# AdamW (lr, weight decay) of the PVT recipe the paper follows.
RECIPE = {'retinanet': (1e-4, 1e-4), 'mask_rcnn': (1e-4, 1e-4),
          'semfpn': (2e-4, 1e-4)}


def _load(path):
    return Config.fromfile(osp.join(REPO_ROOT, path))


@pytest.mark.parametrize('task', sorted(RECIPE))
@pytest.mark.parametrize('arch', ARCHS)
def test_recipe_and_backbone(task, arch):
    cfg = _load(f'configs/{task}_cyclemlp_{arch}.py')
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.arch) == ('CycleMLP', arch)
    assert backbone.init_cfg.checkpoint == IMAGENET_URL.format(arch.upper())
    assert 'drop_path_rate' not in backbone  # 0, as the official dense code
    stages = (1, 2, 3) if task == 'retinanet' else (0, 1, 2, 3)
    assert tuple(backbone.out_indices) == stages
    assert list(cfg.model.neck.in_channels) == [DIMS[arch][i] for i in stages]
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'AdamW'
    assert (optimizer.lr, optimizer.weight_decay) == RECIPE[task]
    if task == 'semfpn':
        assert cfg.train_cfg.max_iters == 40000
        (poly, ) = cfg.param_scheduler
        assert (poly.type, poly.power, poly.eta_min) == ('PolyLR', 0.9, 0.0)
    else:
        assert cfg.train_cfg.max_epochs == 12


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    return make_tiny_demo_data(tmp_path_factory.mktemp('tiny_demo'))


@pytest.mark.parametrize('task, parts', [
    ('retinanet', {'backbone', 'neck', 'bbox_head'}),
    ('mask_rcnn', {'backbone', 'neck', 'rpn_head', 'roi_head'}),
    ('semfpn', {'backbone', 'neck', 'decode_head'}),
])
def test_one_training_iteration(task, parts, tiny_data, tmp_path):
    result = train_one_iter(f'configs/{task}_cyclemlp_b1.py', tiny_data,
                            tmp_path)
    assert set(result.max_change) == parts
