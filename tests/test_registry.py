"""The backbones are reachable by name from mmdet, mmseg and mmpretrain."""
import sys
import types

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import Registry, init_default_scope

import mmmetaformer
from mmmetaformer.models import register_into_downstream
from mmmetaformer.models.backbones import PoolFormer

TINY = dict(arch=dict(embed_dims=[8, 8, 16, 16], depths=[1, 1, 1, 1]))


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_unscoped_name_in_downstream_registry(scope):
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    model = registry.build(dict(type='PoolFormer', **TINY))
    assert type(model) is PoolFormer
    assert scope in mmmetaformer.models.REGISTERED_SCOPES


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_scoped_name(scope):
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    model = registry.build(dict(type='mmmetaformer.PoolFormer', **TINY))
    assert type(model) is PoolFormer


def test_scoped_name_from_mmpretrain():
    """``type='mmmetaformer.X'`` in an mmpretrain config: mmengine resolves a
    scoped type by searching the children of the root registry, where this
    package's registry is. Only ``mmpretrain.registry`` is imported here."""
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS

    from mmmetaformer.registry import MODELS
    root = PRETRAIN_MODELS._get_root_registry()
    assert root is PRETRAIN_MODELS.parent
    assert root._search_child('mmmetaformer') is MODELS
    assert MODELS.get('PoolFormer') is PoolFormer
    # mmpretrain's own PoolFormer is another class, in another registry
    assert 'mmmetaformer' not in PRETRAIN_MODELS.children


def test_build_from_mmpretrain_registry():
    """The full build through mmpretrain's registry. mmengine first imports
    ``mmpretrain.models``, which needs torchvision: there is no CPU build of
    it for torch 2.13, so this runs only where torchvision is installed."""
    pytest.importorskip('torchvision')
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    model = PRETRAIN_MODELS.build(dict(type='mmmetaformer.PoolFormer', **TINY))
    assert type(model) is PoolFormer


def test_custom_imports_in_a_detector_config():
    cfg = Config(
        dict(
            custom_imports=dict(
                imports=['mmmetaformer'], allow_failed_imports=False),
            default_scope='mmdet',
            model=dict(
                type='RetinaNet',
                data_preprocessor=dict(type='DetDataPreprocessor'),
                backbone=dict(type='PoolFormer', out_indices=(1, 2, 3),
                              **TINY),
                neck=dict(type='FPN', in_channels=[8, 16, 16],
                          out_channels=16, start_level=0,
                          add_extra_convs='on_input', num_outs=5),
                bbox_head=dict(
                    type='RetinaHead', num_classes=3, in_channels=16,
                    stacked_convs=1, feat_channels=16,
                    anchor_generator=dict(
                        type='AnchorGenerator', octave_base_scale=4,
                        scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                        strides=[8, 16, 32, 64, 128]),
                    bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
                    loss_cls=dict(type='FocalLoss', use_sigmoid=True),
                    loss_bbox=dict(type='L1Loss')))))
    init_default_scope(cfg.default_scope)
    from mmdet.registry import MODELS
    detector = MODELS.build(cfg.model)
    feats = detector.extract_feat(torch.randn(1, 3, 64, 96))
    assert [f.shape[-2:] for f in feats][:3] == [(8, 12), (4, 6), (2, 3)]


def test_registration_conflict_is_an_error(monkeypatch):
    """A downstream registry that already has another class under the same
    name is never silently overwritten."""
    fake_registry = Registry('model', scope='fakelib')

    @fake_registry.register_module(name='PoolFormer')
    class Other(torch.nn.Module):
        pass

    fakelib = types.ModuleType('fakelib')
    fakelib.registry = types.ModuleType('fakelib.registry')
    fakelib.registry.MODELS = fake_registry
    monkeypatch.setitem(sys.modules, 'fakelib', fakelib)
    monkeypatch.setitem(sys.modules, 'fakelib.registry', fakelib.registry)
    monkeypatch.setattr('importlib.util.find_spec', lambda name: object())
    with pytest.raises(KeyError, match='PoolFormer'):
        register_into_downstream(scopes=('fakelib', ))


def test_missing_library_is_skipped(monkeypatch):
    monkeypatch.setattr('importlib.util.find_spec', lambda name: None)
    assert register_into_downstream(scopes=('not_installed_lib', )) == []
