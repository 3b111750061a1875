"""MetaFormer baselines (PoolFormerV2, IdentityFormer, RandFormer, ConvFormer,
CAFormer): parity with the official models, official and timm checkpoint
loading through the user path, the mixers against independent computations,
RandFormer's any-size policy, and the official parameter counts."""
import math

import pytest
import torch

from mmmetaformer.models.backbones import (CAFormer, ConvFormer,
                                           IdentityFormer, PoolFormerV2,
                                           RandFormer)
from mmmetaformer.models.backbones import metaformer_baselines as mb
from mmmetaformer.models.layers import GroupNorm1, LayerNorm, Scale, StarReLU
from mmmetaformer.testing import parity
from .utils import save


PARITY_CASES = [
    ('identityformer_s12', IdentityFormer, 's12'),
    ('poolformerv2_s12', PoolFormerV2, 's12'),
    ('randformer_s12', RandFormer, 's12'),
    ('convformer_s18', ConvFormer, 's18'),
    ('caformer_s18', CAFormer, 's18'),
    ('caformer_m36', CAFormer, 'm36'),
]


def official_to_timm(key, value):
    """Official name -> timm name and shape, from the mapping table and the
    reshape list in shared/spec/checkpoints.md (written independently of the
    converter). Returns (key, value)."""
    parts = key.split('.')
    if parts[0] == 'downsample_layers':
        stage, leaf = int(parts[1]), parts[2]
        leaf = 'norm' if leaf in ('pre_norm', 'post_norm') else leaf
        prefix = 'stem' if stage == 0 else f'stages.{stage}.downsample'
        key = '.'.join([prefix, leaf] + parts[3:])
    elif parts[0] == 'stages':
        key = '.'.join(['stages', parts[1], 'blocks'] + parts[2:])
        is_linear_in_timm = parts[3] == 'token_mixer' and parts[4] in (
            'qkv', 'proj')
        if (value.dim() == 2 and not is_linear_in_timm
                and parts[-2] in ('fc1', 'fc2', 'pwconv1', 'pwconv2')):
            value = value.reshape(*value.shape, 1, 1)
    elif parts[0] == 'norm':
        key = 'head.norm.' + parts[-1]
    elif parts[0] == 'head':
        key = 'head.fc.' + '.'.join(parts[1:])
    else:
        raise KeyError(key)
    return key, value


@pytest.fixture(scope='module')
def filled():
    cache = {}

    def get(variant):
        if variant not in cache:
            cache[variant] = parity.official_dense_state_dict(
                variant, with_imagenet_only=True)
        return cache[variant]

    return get


# ------------------------------------------------------------------ parity
@pytest.mark.parametrize('variant, cls, arch', PARITY_CASES)
def test_parity_with_official_model(variant, cls, arch, tmp_path, filled):
    """The acceptance test: the official ImageNet-format file (flat, filled
    by the reference rule), loaded through ``init_cfg`` with
    ``out_norm=None``, reproduces the official float64 stage outputs on
    every reference input (RandFormer: 224x224 only)."""
    record = parity.load_keys(variant)
    path = save(filled(variant), tmp_path)
    model = cls(arch, out_norm=None,
                init_cfg=dict(type='Pretrained', checkpoint=path)).double()
    model.init_weights()  # the user path: init_cfg -> converter -> load
    report = model.load_pretrained(path)  # again, to inspect the report
    assert report.key_format == 'official'
    assert report.clean and not report.missing and not report.reshaped
    assert sorted(report.ignored) == sorted(record['imagenet_only_keys'])
    assert len(report.loaded) == len(record['keys'])
    results = parity.parity_errors(model, parity.load_reference(variant))
    n_inputs = 1 if variant.startswith('randformer') else 2
    assert len(results) == 4 * n_inputs
    assert all(r['shape_ok'] for r in results)
    worst = parity.worst_error(results)
    assert worst <= 1e-10, results


@pytest.mark.parametrize('variant, cls, arch', PARITY_CASES)
def test_parameter_count_matches_official(variant, cls, arch):
    record = parity.load_keys(variant)
    with torch.device('meta'):
        model = cls(arch, out_norm=None)
    assert sum(p.numel() for p in model.parameters()) == record[
        'n_params_dense_backbone']


# Backbone parameter counts from shared/spec/metaformer_baselines.md.
SPEC_COUNTS = {
    PoolFormerV2: dict(s12=11_377_688, s24=20_827_440, s36=30_277_192,
                       m36=55_306_632, m48=72_575_520),
    IdentityFormer: dict(s12=11_377_688, s24=20_827_440, s36=30_277_192,
                         m36=55_306_632, m48=72_575_520),
    RandFormer: dict(s12=11_612_986, s24=21_298_036, s36=30_983_086,
                     m36=56_012_526, m48=73_516_712),
    ConvFormer: dict(s18=23_669_704, s36=36_907_408, m36=53_411_472,
                     b36=94_439_568),
    CAFormer: dict(s18=23_236_912, s36=36_192_358, m36=52_564_710,
                   b36=93_310_566),
}


@pytest.mark.parametrize('cls', list(SPEC_COUNTS), ids=lambda c: c.__name__)
def test_every_arch_has_the_official_parameter_count(cls):
    assert set(cls.arch_settings) == set(SPEC_COUNTS[cls])
    for arch, expected in SPEC_COUNTS[cls].items():
        with torch.device('meta'):
            model = cls(arch, out_norm=None)
        assert sum(p.numel() for p in model.parameters()) == expected, arch


# ------------------------------------------------------------- checkpoints
@pytest.mark.parametrize('variant, cls, arch', [
    ('poolformerv2_s12', PoolFormerV2, 's12'),
    ('convformer_s18', ConvFormer, 's18'),
    ('caformer_s18', CAFormer, 's18'),
])
def test_timm_checkpoint(variant, cls, arch, tmp_path, filled):
    """timm's copies (``timm/<name>.sail_in1k``): timm names, 4-D 1x1-conv
    weights for the MLP / SepConv pointwise layers, ``head.norm`` /
    ``head.fc``. They load to the same weights as the official file."""
    official = filled(variant)
    timm_sd = dict(official_to_timm(k, v) for k, v in official.items())
    model = cls(arch, init_cfg=dict(type='Pretrained',
                                    checkpoint=save(timm_sd, tmp_path)))
    model.init_weights()
    report = model.load_converted(timm_sd)
    assert report.key_format == 'timm'
    assert report.clean and not report.unexpected
    assert all(k.startswith('head.') for k in report.ignored)
    assert len(report.ignored) == len(
        parity.load_keys(variant)['imagenet_only_keys'])
    n_4d = sum(v.dim() == 4 and not k.endswith('conv.weight')
               for k, v in timm_sd.items())  # conv, dwconv: 4-D everywhere
    assert n_4d > 0 and len(report.reshaped) == n_4d
    reference = cls(arch)
    reference.load_converted(official)
    for (name, a), b in zip(model.state_dict().items(),
                            reference.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize('variant, cls, arch', [
    ('caformer_s18', CAFormer, 's18'),
    ('identityformer_s12', IdentityFormer, 's12'),
])
def test_imagenet_release_with_default_out_norm(variant, cls, arch,
                                                tmp_path, filled):
    """With the default output norms, the ImageNet release lacks them: they
    keep their (identity) initialisation and the report says so; the
    classifier (incl. ConvFormer/CAFormer's MlpHead) is ignored."""
    model = cls(arch)
    report = model.load_pretrained(save(filled(variant), tmp_path))
    assert report.clean
    assert sorted(report.expected_missing) == sorted(
        f'norm{i}.{p}' for i in range(4) for p in ('weight', 'bias'))
    assert sorted(report.ignored) == sorted(
        parity.load_keys(variant)['imagenet_only_keys'])
    assert torch.equal(model.norm3.weight, torch.ones(512))
    assert torch.equal(model.norm3.bias, torch.zeros(512))


def test_dense_checkpoint_with_prefix(tmp_path, filled):
    """A detector trained with this package: ``state_dict`` with
    ``backbone.`` keys in this package's names, output norms included."""
    source = ConvFormer('s18')
    source.load_converted(filled('convformer_s18'))
    with torch.no_grad():
        source.norm2.bias.fill_(0.5)
    detector = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    detector['neck.lateral_convs.0.conv.weight'] = torch.zeros(256, 64, 1, 1)
    path = save(dict(state_dict=detector, meta=dict(epoch=12)), tmp_path)
    model = ConvFormer('s18', init_cfg=dict(type='Pretrained',
                                            checkpoint=path,
                                            prefix='backbone.'))
    model.init_weights()
    report = model.load_pretrained(path, prefix='backbone.')
    assert report.key_format == 'native'
    assert report.clean and not report.missing and not report.ignored
    for (name, a), b in zip(model.state_dict().items(),
                            source.state_dict().values()):
        assert torch.equal(a, b), name


def test_converter_is_a_pure_renaming(filled):
    official = filled('caformer_s18')
    converted, key_format = mb.CAFormer.convert_checkpoint(official)
    assert key_format == 'official'
    assert len(converted) == len(official)
    pairs = {
        'downsample_layers.0.conv.weight': 'stem.conv.weight',
        'downsample_layers.0.post_norm.weight': 'stem.norm.weight',
        'downsample_layers.2.pre_norm.weight':
        'stages.2.downsample.norm.weight',
        'downsample_layers.3.conv.bias': 'stages.3.downsample.conv.bias',
        'stages.2.8.token_mixer.qkv.weight':
        'stages.2.blocks.8.token_mixer.qkv.weight',
        'stages.0.1.token_mixer.act1.scale':
        'stages.0.blocks.1.token_mixer.act1.scale',
        'stages.3.2.res_scale2.scale': 'stages.3.blocks.2.res_scale2.scale',
        'head.fc1.weight': 'head.fc1.weight',
        'norm.weight': 'norm.weight',
    }
    for old, new in pairs.items():
        assert converted[new] is official[old]


def test_unexpected_missing_and_wrong_arch(caplog):
    state_dict = ConvFormer('s18', out_norm=None).state_dict()
    state_dict['stages.0.blocks.0.extra.weight'] = torch.zeros(3)
    del state_dict['stages.2.blocks.5.mlp.fc1.weight']
    report = ConvFormer('s18', out_norm=None).load_converted(state_dict)
    assert report.unexpected == ['stages.0.blocks.0.extra.weight']
    assert report.missing == ['stages.2.blocks.5.mlp.fc1.weight']
    assert not report.clean
    with pytest.raises(ValueError, match='Shape mismatch.*arch'):
        CAFormer('m36').load_converted(CAFormer('s18').state_dict())


def test_imagenet_urls():
    assert CAFormer.imagenet_url('s18') == (
        'https://huggingface.co/sail/dl/resolve/main/caformer/'
        'caformer_s18.pth')
    assert RandFormer.imagenet_url('m48').endswith(
        '/randformer/randformer_m48.pth')
    with pytest.raises(ValueError, match='valid choices'):
        ConvFormer.imagenet_url('s12')


# ------------------------------------------------------- block components
@pytest.mark.parametrize('cls, norm_type', [
    (PoolFormerV2, GroupNorm1), (IdentityFormer, GroupNorm1),
    (RandFormer, GroupNorm1), (ConvFormer, LayerNorm), (CAFormer, LayerNorm)
])
def test_norms_and_scales(cls, norm_type):
    tiny = dict(embed_dims=[8, 16, 32, 64], depths=[1, 1, 1, 1])
    model = cls(tiny)
    for stage in range(4):
        block = model.stages[stage].blocks[0]
        for norm in (block.norm1, block.norm2):
            assert isinstance(norm, norm_type)
            assert norm.eps == 1e-6 and norm.bias is None
        # residual scales in stages 2 and 3 only, no layer scale
        has_res_scale = isinstance(block.res_scale1, Scale)
        assert has_res_scale == (stage >= 2)
        assert isinstance(block.layer_scale1, torch.nn.Identity)
        assert block.mlp.fc1.bias is None
        assert isinstance(block.mlp.act, StarReLU)
    for norm in [model.stem.norm] + [
            model.stages[i].downsample.norm for i in (1, 2, 3)]:
        assert isinstance(norm, LayerNorm)
        assert norm.eps == 1e-6 and norm.bias is None
    assert model.stages[1].downsample.norm_first
    assert not model.stem.norm_first
    # default output norms: the block norm type, with a bias
    assert isinstance(model.norm0, norm_type)
    assert model.norm0.eps == 1e-6 and model.norm0.bias is not None


def test_init_weights_is_the_official_init():
    model = ConvFormer(dict(embed_dims=[32, 64, 64, 64], depths=[1, 1, 1, 1]))
    model.init_weights()
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            # truncated normal std 0.02 (truncated at +-2 absolute, as in
            # the official code: effectively a plain normal); PyTorch's
            # default init would give std >= 0.036 for these layers
            assert module.weight.std().item() == pytest.approx(0.02, rel=0.3)
            if module.bias is not None:
                assert not module.bias.any()


def test_caformer_heads():
    """heads per attention stage = channels / head_dim (32)."""
    assert CAFormer('s18').stages[3].blocks[0].token_mixer.num_heads == 16
    assert CAFormer('m36').stages[2].blocks[0].token_mixer.num_heads == 12


# ------------------------------------------------------ RandFormer policy
def test_random_matrix_is_frozen():
    model = RandFormer('s12')
    mixer = model.stages[2].blocks[0].token_mixer
    assert mixer.random_matrix.shape == (196, 196)
    assert model.stages[3].blocks[0].token_mixer.random_matrix.shape == (49,
                                                                         49)
    assert 'stages.2.blocks.0.token_mixer.random_matrix' in model.state_dict()
    assert not mixer.random_matrix.requires_grad
    # official init: row-wise softmax of uniform numbers
    assert torch.allclose(mixer.random_matrix.sum(-1), torch.ones(196))
    assert (mixer.random_matrix > 0).all()
    # even if someone unfreezes it, it never receives a gradient or an
    # optimiser update (AdamW with weight decay included)
    for p in model.parameters():
        p.requires_grad_(True)
    before = mixer.random_matrix.detach().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1,
                                  weight_decay=0.5)
    model.train()
    outs = model(torch.randn(1, 3, 64, 64))
    sum(o.square().mean() for o in outs).backward()
    optimizer.step()
    assert mixer.random_matrix.grad is None
    assert torch.equal(mixer.random_matrix, before)


@pytest.mark.parametrize('size', [(32, 32), (97, 131), (225, 225),
                                  (160, 256)])
def test_randformer_runs_at_any_size(size):
    """The official RandFormer runs only at H, W in [211, 226]; here any
    size >= 32 works with the official 14x14 / 7x7 windows."""
    model = RandFormer(dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1]))
    with torch.no_grad():
        outs = model.eval()(torch.randn(1, 3, *size))
    expected = [(s + 4 - 7) // 4 + 1 for s in size]
    for out in outs:
        assert tuple(out.shape[2:]) == tuple(expected)
        assert torch.isfinite(out).all()
        expected = [math.ceil(s / 2) for s in expected]


def test_randformer_stage_at_224_is_one_window():
    """At 224x224 the stage-2/3 maps are exactly one official window, so the
    windowed policy is the official whole-map computation."""
    model = RandFormer(dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1]),
                       out_norm=None).eval()
    outs = model(torch.randn(1, 3, 224, 224))
    assert outs[2].shape[2:] == (14, 14) and outs[3].shape[2:] == (7, 7)


# ------------------------------------------------------- argument errors
@pytest.mark.parametrize('cls, arch, message', [
    (RandFormer, dict(random_windows=[None, None, 14]), 'random_windows'),
    (RandFormer, dict(random_windows=[None, None, 0, 7]), 'random_windows'),
    (CAFormer, dict(head_dim=0), 'head_dim'),
    (ConvFormer, dict(mlp_ratios=0), 'mlp_ratios'),
    (ConvFormer, dict(mlp_ratios=[4, 4, 4]), 'mlp_ratios'),
    (PoolFormerV2, dict(res_scale_init_values=[None, None, 1.0, 'x']),
     'res_scale_init_values'),
    (IdentityFormer, dict(head_dim=32), 'unknown keys'),
    (ConvFormer, dict(random_windows=[None, None, 14, 7]), 'unknown keys'),
])
def test_arch_errors(cls, arch, message):
    full = dict(embed_dims=[8, 16, 32, 64], depths=[1, 1, 1, 1], **arch)
    with pytest.raises(ValueError, match=message):
        cls(full)
