"""The backbones are reachable by name from mmdet, mmseg and mmpretrain."""
import importlib
import subprocess
import sys
import textwrap
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


def _fake_library(monkeypatch, name, models=None, broken=None):
    """Put a fake library ``name`` with a ``name.registry`` module into
    ``sys.modules`` (or, with ``broken``, one whose registry import raises
    ``broken``) and make ``find_spec`` report it as installed."""
    fakelib = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, fakelib)
    if broken is None:
        fakelib.registry = types.ModuleType(f'{name}.registry')
        fakelib.registry.MODELS = models or Registry('model', scope=name)
        fakelib.registry.OPTIM_WRAPPER_CONSTRUCTORS = Registry(
            'optimizer wrapper constructor', scope=name)
        monkeypatch.setitem(sys.modules, f'{name}.registry', fakelib.registry)
    else:
        real_import = importlib.import_module

        def import_module(module_name, *args, **kwargs):
            if module_name == f'{name}.registry':
                raise broken
            return real_import(module_name, *args, **kwargs)

        monkeypatch.setattr('importlib.import_module', import_module)
    monkeypatch.setattr('importlib.util.find_spec', lambda spec: object())
    return fakelib


def test_registration_conflict_is_an_error(monkeypatch):
    """A downstream registry that already has another class under the same
    name is never silently overwritten."""
    fake_registry = Registry('model', scope='fakelib')

    @fake_registry.register_module(name='PoolFormer')
    class Other(torch.nn.Module):
        pass

    _fake_library(monkeypatch, 'fakelib', models=fake_registry)
    with pytest.raises(KeyError, match='PoolFormer'):
        register_into_downstream(scopes=('fakelib', ))


def test_missing_library_is_skipped(monkeypatch):
    monkeypatch.setattr('importlib.util.find_spec', lambda name: None)
    assert register_into_downstream(scopes=('not_installed_lib', )) == []


def test_broken_library_warns_and_is_skipped(monkeypatch):
    """An installed library whose import fails (here: a missing dependency)
    does not stop the registration into the others; the warning names the
    library and its error."""
    _fake_library(monkeypatch, 'brokenlib',
                  broken=ModuleNotFoundError("No module named 'mmcv'"))
    fine = _fake_library(monkeypatch, 'finelib')
    with pytest.warns(RuntimeWarning) as record:
        done = register_into_downstream(scopes=('brokenlib', 'finelib'))
    assert done == ['finelib']
    assert len(record) == 1
    message = str(record[0].message)
    assert 'brokenlib' in message and "No module named 'mmcv'" in message
    assert fine.registry.MODELS.get('PoolFormer') is PoolFormer


def test_broken_library_does_not_break_the_import():
    """``import mmmetaformer`` in a fresh process where mmdet's import raises
    (a fake ``mmdet`` package first on ``sys.path``) succeeds with the
    warning, and mmseg still gets the unscoped names."""
    code = textwrap.dedent("""
        import sys, tempfile, os, warnings
        root = tempfile.mkdtemp()
        os.makedirs(os.path.join(root, 'mmdet'))
        with open(os.path.join(root, 'mmdet', '__init__.py'), 'w') as f:
            f.write('raise ImportError("mmdet is broken on purpose")')
        sys.path.insert(0, root)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            import mmmetaformer.models as models
        print(models.REGISTERED_SCOPES)
        print([str(w.message) for w in caught
               if 'mmdet is broken on purpose' in str(w.message)])
    """)
    result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    scopes, warned = result.stdout.strip().splitlines()[-2:]
    try:
        importlib.import_module('mmseg.registry')
        expected = "['mmseg']"
    except Exception:  # an environment without a working mmseg
        expected = '[]'
    assert scopes == expected
    assert 'mmdet' in warned and 'mmdet is broken on purpose' in warned


def test_every_registered_class_gets_downstream_names(monkeypatch):
    """Registration reads the registry, not ``backbones.__all__``: a class
    registered into MODELS without being exported still gets its name."""
    from mmmetaformer.registry import MODELS

    class Unlisted(PoolFormer):
        pass

    monkeypatch.setitem(MODELS._module_dict, 'UnlistedBackbone', Unlisted)
    fake = _fake_library(monkeypatch, 'fakelib')
    assert register_into_downstream(scopes=('fakelib', )) == ['fakelib']
    assert fake.registry.MODELS.get('UnlistedBackbone') is Unlisted
    assert 'UnlistedBackbone' not in mmmetaformer.models.backbones.__all__


def test_optim_wrapper_constructor_names():
    """The layer-decay constructor is in mmmetaformer's registry (scoped name
    from any library) and under its unscoped name in mmdet and mmseg."""
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as ROOT
    from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS as SEG

    from mmmetaformer.engine import LayerDecayOptimWrapperConstructor
    from mmmetaformer.registry import OPTIM_WRAPPER_CONSTRUCTORS
    assert OPTIM_WRAPPER_CONSTRUCTORS.scope == 'mmmetaformer'
    assert ROOT.get('mmmetaformer.LayerDecayOptimWrapperConstructor') is \
        LayerDecayOptimWrapperConstructor
    assert SEG.get('LayerDecayOptimWrapperConstructor') is \
        LayerDecayOptimWrapperConstructor


def test_hooks_registry():
    from mmengine.registry import HOOKS as ROOT

    from mmmetaformer.registry import HOOKS
    assert HOOKS.parent is ROOT and HOOKS.scope == 'mmmetaformer'
    assert ROOT._search_child('mmmetaformer') is HOOKS


def test_unscoped_constructor_in_an_mmseg_config():
    """``constructor='LayerDecayOptimWrapperConstructor'`` (unscoped, as in
    configs/upernet_restv2_*.py) builds under mmseg's default scope."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    from mmmetaformer.models.backbones import ResTV2
    model = torch.nn.Module()
    model.backbone = ResTV2(dict(embed_dims=[8, 16, 16, 16],
                                 depths=[1, 1, 1, 1], num_heads=1))
    with DefaultScope.overwrite_default_scope('mmseg'):
        wrapper = build_optim_wrapper(
            model,
            dict(type='OptimWrapper',
                 constructor='LayerDecayOptimWrapperConstructor',
                 optimizer=dict(type='AdamW', lr=1e-3),
                 paramwise_cfg=dict(decay_rate=0.5,
                                    decay_type='stage_wise')))
    lrs = sorted({g['lr'] for g in wrapper.optimizer.param_groups})
    assert lrs == pytest.approx(sorted(1e-3 * 0.5**k for k in range(6)))
