"""PiT: parity with the official network through the user path, official /
timm / distilled checkpoints, the dense extensions (stride-4 upsample,
position-embedding resize, PiT-B resampling), official sizes and parameter
counts. Also the behaviour PiT shares with MLPMixer and ResMLP (the
backbones that are not 4-stage MetaFormers): frozen_stages, with_cp,
drop path, layer depths, argument errors, on tiny archs."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmmetaformer.models.backbones.pit import PiT
from mmmetaformer.models.layers import DropPath
from mmmetaformer.registry import MODELS
from mmmetaformer.testing import parity
from .tiny_archs import OTHER_TINY_ARCHS
from .utils import check_with_cp, save

TINY = OTHER_TINY_ARCHS
FAMILIES = sorted(TINY)


def build(name, **kwargs):
    torch.manual_seed(0)
    args = dict(TINY[name])
    args.update(kwargs)
    return MODELS.build(dict(type=name, **args))


def official_to_timm(key):
    """Official PiT name -> timm name (shared/spec: the only rename is
    ``pools.{i}.`` -> ``transformers.{i+1}.pool.``)."""
    if key.startswith('pools.'):
        i = int(key.split('.')[1])
        return f'transformers.{i + 1}.pool.' + key.split('.', 2)[2]
    return key


@pytest.fixture(scope='module')
def pit_s_official():
    return parity.official_dense_state_dict('pit_s', with_imagenet_only=True)


@pytest.mark.parametrize('variant, arch', [('pit_s', 's'), ('pit_ti', 'ti')])
def test_parity_with_official_model(variant, arch, tmp_path):
    """Official weights (filled by the reference rule) in a flat file,
    loaded through ``init_cfg``: the three official stage maps in float64."""
    state_dict = parity.official_dense_state_dict(
        variant, with_imagenet_only=True)
    path = save(state_dict, tmp_path)
    model = PiT(arch, out_indices=(1, 2, 3), out_norm=None,
                init_cfg=dict(type='Pretrained', checkpoint=path)).double()
    model.init_weights()
    report = model.load_pretrained(path)
    assert report.key_format == 'official'
    assert report.clean and not report.missing
    assert sorted(report.ignored) == [
        'head.bias', 'head.weight', 'norm.bias', 'norm.weight']
    assert len(report.loaded) == len(parity.load_keys(variant)['keys'])
    results = parity.parity_errors(model, parity.load_reference(variant))
    assert [r['stride'] for r in results] == [8, 16, 32]
    assert all(r['shape_ok'] for r in results)
    assert parity.worst_error(results) <= 1e-10, results


def test_parity_fails_without_the_class_token(pit_s_official):
    """The spatial tokens attend to the class token: zeroing it must break
    parity (so the check above can fail)."""
    state_dict = dict(pit_s_official)
    state_dict['cls_token'] = torch.zeros_like(state_dict['cls_token'])
    model = PiT('s', out_indices=(1, 2, 3), out_norm=None).double()
    model.load_converted(state_dict)
    results = parity.parity_errors(model, parity.load_reference('pit_s'))
    assert parity.worst_error(results) > 1e-4


def test_fill_rule_matches_reference_checksums(pit_s_official):
    sums = parity.load_reference('pit_s')['fill_checksums']['per_key_sum']
    assert set(sums) == set(pit_s_official)
    for key, value in sums.items():
        got = pit_s_official[key].sum().item()
        assert got == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_timm_checkpoint(pit_s_official, tmp_path):
    timm_sd = {official_to_timm(k): v for k, v in pit_s_official.items()}
    assert 'transformers.2.pool.conv.weight' in timm_sd
    model = PiT('s', out_norm=None).double()
    report = model.load_pretrained(save(timm_sd, tmp_path))
    assert report.key_format == 'timm' and report.clean
    official = PiT('s', out_norm=None).double()
    official.load_converted(pit_s_official)
    official.upsample.load_state_dict(model.upsample.state_dict())
    x = torch.randn(1, 3, 64, 80, dtype=torch.float64)
    with torch.no_grad():
        for a, b in zip(model.eval()(x), official.eval()(x)):
            assert torch.equal(a, b)


def test_distilled_checkpoint(pit_s_official, tmp_path):
    """Distilled releases: two class tokens (both used), ``head_dist``
    ignored; a token-count mismatch names the fix."""
    state_dict = dict(pit_s_official)
    state_dict['cls_token'] = torch.randn(1, 2, 144, dtype=torch.float64)
    state_dict['head_dist.weight'] = torch.zeros(1000, 576)
    state_dict['head_dist.bias'] = torch.zeros(1000)
    path = save(state_dict, tmp_path)
    model = PiT('s', distilled=True)
    report = model.load_pretrained(path)
    assert report.clean
    assert {'head_dist.weight', 'head_dist.bias'} <= set(report.ignored)
    assert torch.equal(model.stem.cls_token,
                       state_dict['cls_token'].float())
    with pytest.raises(ValueError, match='distilled=True'):
        PiT('s').load_pretrained(path)
    with pytest.raises(ValueError, match='distilled=False'):
        PiT('s', distilled=True).load_converted(pit_s_official)


def test_imagenet_file_with_all_levels(pit_s_official):
    """The stride-4 upsample and the output norms are not in ImageNet files:
    reported as kept at their initialisation, nothing else missing."""
    report = PiT('s').load_converted(pit_s_official)
    assert report.clean
    assert sorted(report.expected_missing) == sorted(
        ['upsample.weight', 'upsample.bias'] +
        [f'norm{i}.{p}' for i in range(4) for p in ('weight', 'bias')])


def expected_pit_sizes(size, patch=16, stride=8):
    grid = [(s - patch) // stride + 1 for s in size]
    sizes = [tuple(2 * g for g in grid)]
    for _ in range(3):
        sizes.append(tuple(grid))
        grid = [math.ceil(g / 2) for g in grid]
    return sizes


@pytest.mark.parametrize('size, official', [
    ((224, 224), [(54, 54), (27, 27), (14, 14), (7, 7)]),
    ((200, 300), [(48, 72), (24, 36), (12, 18), (6, 9)]),
    ((97, 131), [(22, 30), (11, 15), (6, 8), (3, 4)]),
    ((32, 32), [(6, 6), (3, 3), (2, 2), (1, 1)]),
    ((64, 45), None), ((33, 100), None)])
def test_output_sizes(size, official):
    """Stem ``floor((H - 16) / 8) + 1`` (no padding), ``ceil(h / 2)`` per
    pooling, x2 for the stride-4 level (spec sizes where listed)."""
    model = build('PiT').eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, *size))
    expected = official or expected_pit_sizes(size)
    assert [tuple(o.shape[2:]) for o in outs] == expected
    assert expected == expected_pit_sizes(size)
    assert [o.shape[1] for o in outs] == [4, 8, 16, 32]
    assert model.out_channels == (4, 8, 16, 32)
    assert all(o.is_contiguous() and torch.isfinite(o).all() for o in outs)


def test_position_embedding_is_resized_bicubically():
    model = build('PiT').eval()
    stem = model.stem
    x = torch.randn(1, 3, 96, 128)  # grid 11 x 15, stored 27 x 27
    with torch.no_grad():
        tokens, cls = stem(x)
        conv = stem.conv(x)
    pos = F.interpolate(stem.pos_embed, size=(11, 15), mode='bicubic',
                        align_corners=False)
    assert torch.allclose(tokens.permute(0, 3, 1, 2) - conv, pos, atol=1e-6)
    assert torch.equal(cls, stem.cls_token.expand(1, -1, -1))
    x = torch.randn(1, 3, 224, 224)  # the stored grid: added as it is
    with torch.no_grad():
        tokens, _ = stem(x)
        assert torch.equal(tokens.permute(0, 3, 1, 2),
                           stem.conv(x) + stem.pos_embed)


def test_pit_b_is_resampled_to_nominal_strides():
    """PiT-B (patch 14, stride 7): 31/16/8 at 224 officially, resampled to
    28/14/7 (= ceil(224 / s)) by default."""
    arch = dict(embed_dims=[8, 16, 32], depths=[1, 1, 1],
                num_heads=[1, 1, 1], patch_size=14, stride=7, pos_grid=31,
                resample=True)
    x = torch.randn(1, 3, 224, 224)
    resampled = PiT(arch, out_norm=None).eval()
    raw_model = PiT(arch, out_norm=None, resample=False).eval()
    raw_model.load_state_dict(resampled.state_dict())
    with torch.no_grad():
        outs, raw = resampled(x), raw_model(x)
    assert [o.shape[-1] for o in outs] == [56, 28, 14, 7]
    assert [o.shape[-1] for o in raw] == [62, 31, 16, 8]
    assert torch.allclose(
        outs[3], F.interpolate(raw[3], size=(7, 7), mode='bilinear',
                               align_corners=False), atol=1e-6)
    assert PiT.arch_settings['b']['resample'] is True


@pytest.mark.parametrize('arch, trunk', [('ti', 4_589_760),
                                         ('xs', 10_233_120),
                                         ('s', 22_883_760),
                                         ('b', 72_737_792)])
@pytest.mark.parametrize('distilled', [False, True])
def test_parameter_counts_of_the_official_trunks(arch, trunk, distilled):
    """shared/spec: trunk = everything but ``norm`` and the heads (a
    distilled model has C0 more: its second class token)."""
    with torch.device('meta'):
        model = PiT(arch, distilled=distilled, out_indices=(1, 2, 3),
                    out_norm=None)
    extra = model.embed_dims[1] if distilled else 0
    assert sum(p.numel() for p in model.parameters()) == trunk + extra


def test_imagenet_url():
    assert PiT.imagenet_url('s').endswith('/pit_s_809.pth')
    assert PiT.imagenet_url('b', distilled=True).endswith(
        '/pit_b_distill_840.pth')
    with pytest.raises(ValueError, match='valid choices'):
        PiT.imagenet_url('m')


# --------------------------------------------------------------------------
# Behaviour shared by PiT, MLPMixer and ResMLP
# --------------------------------------------------------------------------
def trunk_blocks(model):
    return [b for stage in model.stages for b in stage.blocks]


@pytest.mark.parametrize('name', FAMILIES)
def test_out_indices_subset_gives_the_same_maps(name):
    full = build(name, out_norm=None).eval()
    subset = build(name, out_indices=(1, 3), out_norm=None).eval()
    subset.load_state_dict(full.state_dict(), strict=False)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = subset(x), full(x)
    assert subset.out_strides == (8, 32)
    assert torch.allclose(a[0], b[1]) and torch.allclose(a[1], b[3])
    assert build(name, out_indices=-1).out_indices == (3, )


@pytest.mark.parametrize('name', FAMILIES)
@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2])
def test_frozen_stages(name, frozen_stages):
    model = build(name, frozen_stages=frozen_stages).train()
    # PiT freezes whole stages, MLPMixer / ResMLP single blocks
    units = list(model.stages) if name == 'PiT' else trunk_blocks(model)
    frozen = ([] if frozen_stages < 0 else [model.stem] +
              units[:frozen_stages])
    if name == 'PiT':  # with the output norms of their levels
        frozen += [getattr(model, f'norm{s + 1}')
                   for s in range(frozen_stages)]
    frozen_params = {id(p) for m in frozen for p in m.parameters()}
    for param in model.parameters():
        assert param.requires_grad is (id(param) not in frozen_params)
    for module in frozen:
        assert not any(m.training for m in module.modules())
    assert units[frozen_stages].training  # the next one trains
    assert bool(frozen_params) is (frozen_stages >= 0)


@pytest.mark.parametrize('name', ['MLPMixer', 'ResMLP'])
def test_frozen_blocks_beyond_four(name):
    """MLPMixer / ResMLP count frozen blocks, up to all of them."""
    arch = dict(TINY[name]['arch'], depths=6)
    model = build(name, arch=arch, frozen_stages=6).train()
    assert not any(p.requires_grad
                   for p in model.stages[0].parameters())
    assert all(p.requires_grad for p in model.pyramid.parameters())
    with pytest.raises(ValueError, match=r'\[-1, 6\]'):
        build(name, arch=arch, frozen_stages=7)


@pytest.mark.parametrize('name', FAMILIES)
def test_with_cp_same_result_and_used(name, monkeypatch):
    plain = build(name).train()
    ckpt = build(name, with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    check_with_cp(plain, ckpt, len(trunk_blocks(ckpt)), monkeypatch,
                  every_grad=True)


@pytest.mark.parametrize('name', FAMILIES)
def test_every_parameter_gets_a_gradient(name):
    model = build(name).train()
    outs = model(torch.randn(2, 3, 64, 64))
    sum(o.square().mean() for o in outs).backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]


@pytest.mark.parametrize('name', FAMILIES)
def test_drop_path(name):
    model = build(name, drop_path_rate=0.3)
    drops = [m.drop_prob for m in model.modules() if isinstance(m, DropPath)]
    total = len(trunk_blocks(model))
    assert drops == pytest.approx(
        [0.3 * k / (total - 1) for k in range(1, total)])
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.manual_seed(1)
        c = model.train()(x)[-1]
        torch.manual_seed(2)
        d = model(x)[-1]
        e, f = model.eval()(x)[-1], model(x)[-1]
    assert not torch.allclose(c, d) and torch.equal(e, f)


@pytest.mark.parametrize('name', FAMILIES)
def test_norm_eval_is_accepted(name):
    model = build(name, norm_eval=True).train()
    assert model.norm_eval and model.training


@pytest.mark.parametrize('name', FAMILIES)
def test_layer_depth(name):
    model = build(name)
    num_layers = len(trunk_blocks(model)) + 2
    ids = {n: model.get_layer_depth('backbone.' + n, 'backbone.')
           for n, _ in model.named_parameters()}
    assert all(total == num_layers for _, total in ids.values())
    assert all(ids[n][0] == 0 for n in ids if n.startswith('stem.'))
    last_block = [n for n in ids if '.blocks.' in n][-1]
    assert ids[last_block][0] == num_layers - 2
    heads = [n for n in ids if n.startswith(('upsample', 'pyramid', 'norm'))]
    assert heads and all(ids[n][0] == num_layers - 1 for n in heads)
    block_ids = [ids[n][0] for n in ids if '.blocks.' in n]
    assert block_ids == sorted(block_ids)


@pytest.mark.parametrize('name', FAMILIES)
@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='nope'), 'valid choices'),
    (dict(arch=dict(embed_dims=8)), 'missing keys'),
    (dict(arch=dict(embed_dims=8, depths=1, bogus=1)), 'unknown keys'),
    (dict(out_indices=(4, )), 'out_indices'),
    (dict(out_indices=(1, 1)), 'out_indices'),
    (dict(frozen_stages=-2), 'frozen_stages'),
    (dict(frozen_stages=99), 'frozen_stages'),
    (dict(drop_path_rate=1.0), 'drop_path_rate'),
    (dict(out_norm='bogus'), 'out_norm'),
    (dict(in_channels=0), 'in_channels'),
])
def test_argument_errors(name, kwargs, message):
    args = dict(TINY[name])
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        MODELS.build(dict(type=name, **args))


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch=dict(embed_dims=[8, 16], depths=[1, 1], num_heads=[1, 1])),
     'embed_dims'),
    (dict(arch=dict(embed_dims=[8, 16, 32], depths=[1, 1, 1],
                    num_heads=[3, 1, 1])), 'num_heads'),
    (dict(arch=dict(embed_dims=[8, 12, 32], depths=[1, 1, 1],
                    num_heads=[1, 1, 1])), 'double'),
    (dict(distilled=1), 'distilled'),
    (dict(frozen_stages=4), 'frozen_stages'),
])
def test_pit_argument_errors(kwargs, message):
    args = dict(TINY['PiT'])
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        PiT(**args)


@pytest.mark.parametrize('name', FAMILIES)
def test_unknown_keyword_is_an_error(name):
    with pytest.raises(TypeError, match='no_such_argument'):
        build(name, no_such_argument=1)


@pytest.mark.parametrize('name', FAMILIES)
@pytest.mark.parametrize('size', [(32, 32), (97, 131), (64, 45), (33, 100),
                                  (45, 64), (50, 50)])
def test_any_size_from_32(name, size):
    """Every H, W >= 32, odd and non-square: 4 finite contiguous levels,
    each ``ceil(/2)`` of the previous one, with the declared channels."""
    model = build(name).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, *size))
    assert [o.shape[1] for o in outs] == list(model.out_channels)
    for prev, out in zip(outs, outs[1:]):
        assert out.shape[2:] == tuple(math.ceil(s / 2)
                                      for s in prev.shape[2:])
    assert all(o.is_contiguous() and torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize('name', FAMILIES)
def test_too_small_or_wrong_inputs(name):
    model = build(name).eval()
    with pytest.raises(ValueError, match='at least 32'):
        model(torch.zeros(1, 3, 31, 64))
    with pytest.raises(ValueError, match='in_channels=3'):
        model(torch.zeros(1, 4, 64, 64))


@pytest.mark.parametrize('name', FAMILIES)
def test_bf16_autocast_outputs_share_one_dtype(name):
    """Under CPU bf16 autocast every level comes out in bf16 (a float32
    parameter added outside a module -- PiT's class token, ResMLP's Affine
    -- used to promote some maps to float32)."""
    model = build(name).eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model(torch.randn(1, 3, 64, 64))
    assert {o.dtype for o in outs} == {torch.bfloat16}


@pytest.mark.parametrize('arch', ['nope', dict(embed_dims=[8, 16, 32],
                                               depths=[1, 1, 1])])
def test_pit_arch_errors_list_every_key(arch):
    """The arch-dict message listed 3 of PiT's 8 keys, not num_heads."""
    with pytest.raises(ValueError) as info:
        PiT(arch)
    message = str(info.value)
    for key in ('embed_dims', 'depths', 'num_heads', 'mlp_ratios',
                'patch_size', 'stride', 'pos_grid', 'resample'):
        assert f"'{key}'" in message, (key, message)
    if isinstance(arch, dict):
        assert "missing keys ['num_heads']" in message
        assert "required: ['depths', 'embed_dims', 'num_heads']" in message


@pytest.mark.parametrize('name', ['MLPMixer', 'ResMLP'])
def test_token_mlp_frozen_stages_message_counts_blocks(name):
    """frozen_stages counts blocks here; the message spoke of stages."""
    with pytest.raises(ValueError) as info:
        build(name, frozen_stages=4)
    message = str(info.value)
    assert 'frozen_stages must be an int in [-1, 3]' in message
    assert 'counts blocks, not stages' in message
    assert 'the first k of the 3 blocks' in message
    assert 'stages 0..k-1' not in message
