"""Behaviour every backbone of the package shares, checked on a tiny arch of
each family (``tiny_archs.TINY_ARCHS``): output layout on odd sizes,
``out_indices``, ``frozen_stages``, ``norm_eval``, ``with_cp``, drop path,
layer depths and argument errors."""
import math

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmmetaformer.models.backbones.base import MetaFormerStage
from mmmetaformer.models.layers import DropPath
from mmmetaformer.registry import MODELS
from .tiny_archs import ALL_TINY_ARCHS, TINY_ARCHS
from .utils import check_with_cp

FAMILIES = sorted(TINY_ARCHS)


def build(name, **kwargs):
    torch.manual_seed(0)
    args = dict(TINY_ARCHS[name])
    args.update(kwargs)
    return MODELS.build(dict(type=name, **args))


#: Registered backbones whose structure differs from the 4-stage core
#: (single-scale trunks with a feature pyramid, PiT's three stages): their
#: shared behaviours are tested in their own files.
TESTED_ELSEWHERE = {
    'PiT': 'test_pit.py',
    'MLPMixer': 'test_mlp_mixer.py',
    'ResMLP': 'test_resmlp.py',
}


def registered_backbones() -> set:
    """The registry's backbones (the registry also holds heads, e.g.
    ``Detectron2RetinaHead`` once a config's ``custom_imports`` loaded
    ``mmmetaformer.models.dense_heads``)."""
    return {name for name, cls in MODELS.module_dict.items()
            if cls.__module__.startswith('mmmetaformer.models.backbones')}


def test_every_registered_backbone_has_a_tiny_arch():
    """Reads the registry itself (not ``backbones.__all__``), so a new
    registered class cannot go untested."""
    registered = registered_backbones()
    assert registered - set(TESTED_ELSEWHERE) == set(TINY_ARCHS)
    assert set(TESTED_ELSEWHERE) <= registered


@pytest.mark.parametrize('name', FAMILIES)
@pytest.mark.parametrize('size', [(32, 32), (97, 131), (64, 45)])
def test_output_layout_on_odd_sizes(name, size):
    model = build(name).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        outs = model(x)
    assert len(outs) == 4
    assert model.out_strides == (4, 8, 16, 32)
    assert model.out_channels == tuple(model.embed_dims)
    prev = None
    for out, channels, stride in zip(outs, model.out_channels,
                                     model.out_strides):
        assert out.shape[:2] == (2, channels)
        assert out.is_contiguous()
        for got, full in zip(out.shape[2:], size):
            # stride-s map of a size-H input: floor or ceil of H / s
            assert math.floor(full / stride) <= got <= math.ceil(full / stride)
        if prev is not None:  # each stage halves (rounding up)
            assert out.shape[2:] == tuple(
                math.ceil(p / 2) for p in prev.shape[2:])
        prev = out
        assert torch.isfinite(out).all()


@pytest.mark.parametrize('name', FAMILIES)
def test_out_indices_subset(name):
    model = build(name, out_indices=(1, 3))
    assert model.out_channels == (model.embed_dims[1], model.embed_dims[3])
    assert model.out_strides == (8, 32)
    names = {n.split('.')[0] for n, _ in model.named_parameters()}
    assert 'norm1' in names or model.out_norm is None
    assert 'norm0' not in names and 'norm2' not in names
    # Raw outputs do not depend on which stages are returned (with output
    # norms they may: ResT v1's norms are part of its trunk, officially).
    subset = build(name, out_indices=(1, 3), out_norm=None).eval()
    full = build(name, out_norm=None).eval()
    full.load_state_dict(subset.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        outs = subset(x)
        full_outs = full(x)
    assert [o.shape for o in outs] == [full_outs[1].shape, full_outs[3].shape]
    assert torch.allclose(outs[0], full_outs[1], atol=1e-6)
    assert torch.allclose(outs[1], full_outs[3], atol=1e-6)
    # negative indices count from the end
    assert build(name, out_indices=-1).out_indices == (3, )


@pytest.mark.parametrize('name', FAMILIES)
def test_raw_outputs_without_out_norm(name):
    model = build(name, out_norm=None)
    for i in range(4):
        assert isinstance(getattr(model, f'norm{i}'), torch.nn.Identity)


@pytest.mark.parametrize('name', FAMILIES)
@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 3, 4])
def test_frozen_stages(name, frozen_stages):
    """The stem, stages 0..k-1 and their output norms norm0..norm{k-1} get
    no gradients and stay in eval mode under .train() (the output norms of
    frozen stages used to stay trainable); everything else trains."""
    model = build(name, frozen_stages=frozen_stages)
    model.train()
    frozen = [] if frozen_stages < 0 else ['stem'] + [
        f'{part}{i}' for i in range(frozen_stages)
        for part in ('stages.', 'norm')
    ]

    def is_frozen(param_name):
        return any(
            param_name == p or param_name.startswith(p + '.') for p in frozen)

    for param_name, param in model.named_parameters():
        if is_frozen(param_name):
            assert not param.requires_grad, param_name
    for module_name, module in model.named_modules():
        if is_frozen(module_name):
            assert not module.training, module_name
    # everything outside the frozen part stays trainable (parameters that
    # are frozen by design, e.g. a fixed random matrix, excepted)
    trainable = [
        n for n, p in model.named_parameters()
        if not is_frozen(n) and p.requires_grad
    ]
    assert bool(trainable) == (frozen_stages < 4)
    assert all(m.training for n, m in model.named_modules()
               if n and not is_frozen(n))
    if frozen_stages == -1:
        assert model.stem.training
    if frozen_stages == 0:  # the stem only
        assert not model.stem.training
        assert model.stages[0].training and model.norm0.training
    if frozen_stages == 1:
        assert not model.norm0.training and model.norm1.training
        assert not any(p.requires_grad for p in model.norm0.parameters())
        assert all(p.requires_grad for p in model.norm1.parameters())


@pytest.mark.parametrize('name', FAMILIES)
@pytest.mark.parametrize('norm_eval', [False, True])
def test_norm_eval(name, norm_eval):
    model = build(name, norm_eval=norm_eval)
    model.train()
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            assert module.training is not norm_eval
    model.eval()
    assert not any(m.training for m in model.modules())


@pytest.mark.parametrize('name', FAMILIES)
def test_with_cp_same_result_and_used(name, monkeypatch):
    plain = build(name).train()
    ckpt = build(name, with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    check_with_cp(plain, ckpt, sum(ckpt.depths), monkeypatch)


@pytest.mark.parametrize('name', FAMILIES)
def test_every_trainable_parameter_gets_a_gradient(name):
    model = build(name).train()
    outs = model(torch.randn(2, 3, 64, 64))
    sum(o.square().mean() for o in outs).backward()
    no_grad = [
        n for n, p in model.named_parameters()
        if p.requires_grad and p.grad is None
    ]
    assert not no_grad


@pytest.mark.parametrize('name', FAMILIES)
def test_drop_path(name):
    rate = 0.3
    model = build(name, drop_path_rate=rate)
    drops = [m for m in model.modules() if isinstance(m, DropPath)]
    total = sum(model.depths)
    # the first block has rate 0 (no module); the rest increase linearly
    assert len(drops) == total - 1
    expected = [rate * k / (total - 1) for k in range(1, total)]
    assert [d.drop_prob for d in drops] == pytest.approx(expected)
    x = torch.randn(4, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        a, b = model(x)[-1], model(x)[-1]
    assert torch.equal(a, b)
    model.train()
    torch.manual_seed(1)
    with torch.no_grad():
        c = model(x)[-1]
    torch.manual_seed(2)
    with torch.no_grad():
        d = model(x)[-1]
    assert not torch.allclose(c, d)
    assert not any(isinstance(m, DropPath) for m in build(name).modules())


@pytest.mark.parametrize('name', FAMILIES)
def test_layer_depth(name):
    model = build(name)
    depths = [model.get_layer_depth('backbone.' + n, 'backbone.')
              for n, _ in model.named_parameters()]
    num_layers = sum(model.depths) + 2
    assert all(total == num_layers for _, total in depths)
    ids = [layer for layer, _ in depths]
    assert ids[0] == 0  # the stem comes first
    assert 0 <= min(ids) and max(ids) == num_layers - 1
    stage_ids = [
        model.get_layer_depth(f'stages.{i}.blocks.0.norm1.weight')[0]
        for i in range(4)
    ]
    assert stage_ids == sorted(stage_ids)


@pytest.mark.parametrize('name', FAMILIES)
@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(arch='nope'), 'valid choices'),
        (dict(arch=dict(embed_dims=[8, 8, 8, 8])), 'missing keys'),
        (dict(arch=dict(embed_dims=[8, 8, 8, 8], depths=[1, 1, 1, 1],
                        bogus=1)), 'unknown keys'),
        (dict(arch=dict(embed_dims=[8, 8, 8], depths=[1, 1, 1])), 'arch'),
        (dict(out_indices=(4, )), 'out_indices'),
        (dict(out_indices=(1, 1)), 'out_indices'),
        (dict(out_indices=()), 'out_indices'),
        (dict(frozen_stages=5), 'frozen_stages'),
        (dict(frozen_stages=-2), 'frozen_stages'),
        (dict(drop_path_rate=1.0), 'drop_path_rate'),
        (dict(out_norm='bogus'), 'out_norm'),
        (dict(out_norm=dict(type='BatchNorm')), 'valid choices'),
        (dict(in_channels=0), 'in_channels'),
    ])
def test_argument_errors(name, kwargs, message):
    args = dict(TINY_ARCHS[name])
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        MODELS.build(dict(type=name, **args))


@pytest.mark.parametrize('name', FAMILIES)
def test_unknown_keyword_is_an_error(name):
    with pytest.raises(TypeError, match='no_such_argument'):
        build(name, no_such_argument=1)


@pytest.mark.parametrize('name', FAMILIES)
def test_named_archs_are_valid(name):
    cls = MODELS.get(name)
    assert cls.arch_settings
    for arch in cls.arch_settings:
        settings = cls.parse_arch(arch)
        assert len(settings['embed_dims']) == len(settings['depths']) == 4


@pytest.mark.parametrize('name', FAMILIES)
def test_with_cp_is_passed_to_each_stage(name):
    """``with_cp`` is a constructor argument of MetaFormerStage (it used to
    be set on each stage after construction)."""
    stage = MetaFormerStage(torch.nn.Identity(), [torch.nn.Identity()],
                            with_cp=True)
    assert stage.with_cp
    assert not MetaFormerStage(torch.nn.Identity(), []).with_cp
    model = build(name, with_cp=True)
    assert all(stage.with_cp for stage in model.stages)


@pytest.mark.parametrize('name', FAMILIES)
def test_stage_depth_and_layer_depth_agree(name):
    """A parameter of stage i (stage id i + 1) has a layer id inside the
    block range of stage i; the stem is 0 in both; the rest is last."""
    model = build(name)
    num_layers = sum(model.depths) + 2
    ends = [sum(model.depths[:i + 1]) for i in range(4)]
    for param_name, _ in model.named_parameters():
        full = 'backbone.' + param_name
        stage_id, num_stage_ids = model.get_stage_depth(full, 'backbone.')
        layer_id, total = model.get_layer_depth(full, 'backbone.')
        assert (num_stage_ids, total) == (6, num_layers)
        if stage_id == 0:
            assert layer_id == 0, param_name
        elif stage_id == 5:
            assert layer_id == num_layers - 1, param_name
        else:
            first = ends[stage_id - 2] + 1 if stage_id > 1 else 1
            assert first <= layer_id <= ends[stage_id - 1], param_name
    assert model.get_stage_depth('head.fc.weight', 'backbone.') == (5, 6)
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (
        num_layers - 1, num_layers)


#: Per-stage arch keys of each family with a positive-number / int value.
_POSITIVE_KEYS = {
    'PoolFormer': ['mlp_ratios'],
    'PoolFormerV2': ['mlp_ratios', 'res_scale_init_values',
                     'layer_scale_init_values'],
    'IdentityFormer': ['mlp_ratios'],
    'RandFormer': ['mlp_ratios', 'random_windows'],
    'ConvFormer': ['mlp_ratios'],
    'CAFormer': ['mlp_ratios'],
    'ResT': ['mlp_ratios', 'num_heads', 'sr_ratios'],
    'ResTV2': ['mlp_ratios', 'num_heads', 'sr_ratios'],
    'CycleMLP': ['mlp_ratios'],
}


@pytest.mark.parametrize('name', FAMILIES)
@pytest.mark.parametrize('bad', [0, -1, True, 'x', float('nan')])
def test_arch_errors_name_the_key_the_stage_and_the_valid_values(name, bad):
    """One validation for every family: a bad entry in stage 2 of a per-stage
    key raises a ValueError naming the key, the stage and what is valid
    (PoolFormer v1 used to accept mlp_ratios=0, and a bool passed as int)."""
    for key in _POSITIVE_KEYS[name] + ['embed_dims', 'depths']:
        arch = dict(TINY_ARCHS[name]['arch'])
        values = list(arch.get(key) or MODELS.get(name).parse_arch(
            dict(arch))[key])
        values[2] = bad
        arch[key] = values
        with pytest.raises(ValueError) as error:
            build(name, arch=arch)
        message = str(error.value)
        assert f"arch['{key}'] of stage 2 is {bad!r}" in message, message
        assert 'must be a positive' in message, message


@pytest.mark.parametrize('bad', [0, -1, 'x', [1e-5, 1e-5]])
def test_poolformer_layer_scale_value_is_checked(bad):
    """PoolFormer v1's scalar ``layer_scale_init_value`` (arch key or
    constructor argument) is validated and named."""
    with pytest.raises(ValueError, match=r"layer_scale_init_value'\] is "):
        build('PoolFormer', layer_scale_init_value=bad)
    arch = dict(TINY_ARCHS['PoolFormer']['arch'], layer_scale_init_value=bad)
    with pytest.raises(ValueError, match=r"layer_scale_init_value'\] is "):
        build('PoolFormer', arch=arch)


@pytest.mark.parametrize('name', sorted(ALL_TINY_ARCHS))
@pytest.mark.parametrize('training', [False, True])
def test_empty_batch_gives_empty_maps(name, training):
    """A batch of 0 images gives maps of 0 images with the shapes of a
    batch of 1 (CAFormer and PiT raised "cannot reshape tensor of 0
    elements": their attention reshaped with -1 next to a batch of 0)."""
    assert set(ALL_TINY_ARCHS) == registered_backbones()
    torch.manual_seed(0)
    model = MODELS.build(dict(type=name, **ALL_TINY_ARCHS[name]))
    model.train(training)
    with torch.no_grad():
        empty = model(torch.randn(0, 3, 64, 45))
        one = model(torch.randn(1, 3, 64, 45))
    assert len(empty) == len(one) == len(model.out_indices)
    assert [tuple(o.shape) for o in empty] == [
        (0, ) + tuple(o.shape[1:]) for o in one]
    assert all(o.dtype == torch.float32 for o in empty)

