"""CycleMLP: Cycle FC exactness against a deformable-convolution definition,
parity with the official dense models, checkpoint loading with offset
validation, and ONNX export."""
import math

import pytest
import torch

from mmmetaformer.models.backbones import CycleMLP
from mmmetaformer.models.layers.cycle import CycleFC, CycleMixer
from mmmetaformer.testing import parity
from .utils import save


# Dense backbone parameter counts (buffers excluded) computed from the
# official code, from shared/spec/cyclemlp.md.
OFFICIAL_DENSE_PARAMS = {
    'b1': 14_643_424,
    'b2': 26_290_528,
    'b3': 37_873_744,
    'b4': 51_284_576,
    'b5': 74_979_624,
}


def official_offset(channels, kernel_size):
    """The offsets of the official ``CycleFC.gen_offset``: channel i moves by
    ``(i + K // 2) mod K - K // 2`` along the kernel's long axis (K = 3:
    0, +1, -1, ...; shared/spec/cyclemlp.md), as (1, 2C, 1, 1) (dy, dx)."""
    kh, kw = kernel_size
    k = kh * kw
    offset = torch.zeros(1, 2 * channels, 1, 1, dtype=torch.float64)
    for i in range(channels):
        s = (i + k // 2) % k - k // 2
        offset[0, 2 * i + (1 if kh == 1 else 0)] = s
    return offset



@pytest.mark.parametrize('variant, arch', [('CycleMLP_B1', 'b1'),
                                           ('CycleMLP_B2', 'b2')])
def test_parity_with_official_dense_model(variant, arch, tmp_path):
    """The acceptance test: official weights (filled by the reference rule,
    offsets included), in the DeiT-style ``{'model': ...}`` container,
    loaded through ``init_cfg``, reproduce the official float64 outputs."""
    state_dict = parity.official_dense_state_dict(
        variant, with_imagenet_only=True)
    path = save(dict(model=state_dict, epoch=299), tmp_path)
    model = CycleMLP(
        arch, init_cfg=dict(type='Pretrained', checkpoint=path)).double()
    model.init_weights()
    report = model.load_pretrained(path)
    assert report.key_format == 'official'
    assert report.clean and not report.missing and not report.unexpected
    assert sorted(report.ignored) == [
        'head.bias', 'head.weight', 'norm.bias', 'norm.weight'
    ]
    keys = parity.load_keys(variant)['keys']
    assert len(report.loaded) == len(keys)
    n_offsets = sum(k.endswith('.offset') for k, _, _ in keys)
    assert sum(k.endswith('.offset') for k in report.loaded) == n_offsets
    assert all(k.endswith(('sfc_h.weight', 'sfc_w.weight'))
               for k in report.reshaped) and len(report.reshaped) == n_offsets
    results = parity.parity_errors(model, parity.load_reference(variant))
    assert len(results) == 8  # 2 inputs x 4 maps
    assert all(r['shape_ok'] for r in results)
    worst = parity.worst_error(results)
    assert worst <= 1e-10, results


def test_fill_rule_matches_reference_checksums():
    state_dict = parity.official_dense_state_dict('CycleMLP_B1')
    sums = parity.load_reference(
        'CycleMLP_B1')['fill_checksums']['per_key_sum']
    assert set(state_dict) <= set(sums)
    for key, value in state_dict.items():
        got = value.double().sum().item()
        assert got == pytest.approx(sums[key], rel=1e-12, abs=1e-12), key


def official_like_state_dict(arch):
    """A complete official-key state_dict for ``arch`` (values: the fill
    rule, offsets from the official formula written in this test)."""
    model = CycleMLP(arch)
    entries = []
    for key, value in model.state_dict().items():
        key = key.replace('token_mixer', 'attn')
        key = key.replace('stem.conv', 'patch_embed.proj')
        parts = key.split('.')
        if parts[0] == 'stages' and parts[2] == 'downsample':
            key = f'network.{2 * int(parts[1]) - 1}.proj.{parts[-1]}'
        elif parts[0] == 'stages':
            key = f'network.{2 * int(parts[1])}.' + '.'.join(parts[3:])
        elif parts[0].startswith('norm'):
            key = f'norm{2 * int(parts[0][4:])}.{parts[-1]}'
        shape = list(value.shape)
        if key.endswith(('sfc_h.weight', 'sfc_w.weight')):
            shape += [1, 1]
        entries.append([key, shape, 'float64'])
    state_dict = parity.filled_state_dict(entries)
    for key in state_dict:
        if key.endswith('offset'):
            kernel = (1, 3) if 'sfc_h' in key else (3, 1)
            state_dict[key] = official_offset(
                state_dict[key].shape[1] // 2, kernel)
    return state_dict


@pytest.fixture(scope='module')
def tiny_official():
    return official_like_state_dict(
        dict(embed_dims=[8, 16, 24, 32], depths=[1, 2, 1, 1]))


TINY = dict(embed_dims=[8, 16, 24, 32], depths=[1, 2, 1, 1])


@pytest.mark.parametrize('key, index, value', [
    ('network.2.1.attn.sfc_w.offset', 5, 1.0),  # a dx of sfc_w, must be 0
    ('network.0.0.attn.sfc_h.offset', 3, 0.5),  # a fractional dx
    ('network.6.0.attn.sfc_h.offset', 2, -1.0),  # a dy of sfc_h, must be 0
])
def test_offset_mismatch_is_an_error(tiny_official, tmp_path, key, index,
                                     value):
    state_dict = {k: v.clone() for k, v in tiny_official.items()}
    assert state_dict[key][0, index, 0, 0] != value
    state_dict[key][0, index, 0, 0] = value
    path = save(dict(model=state_dict), tmp_path)
    model = CycleMLP(TINY, init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(ValueError, match='offset.*official formula'):
        model.init_weights()
    # the converter refuses it before anything is copied
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match='offset.*official formula'):
        model.load_converted(state_dict)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_offset_mismatch_is_an_error_on_direct_load(tiny_official):
    """Native state_dicts (e.g. inside an mmdet checkpoint, loaded by
    mmengine) are checked by the module itself."""
    model = CycleMLP(TINY)
    model.load_converted(tiny_official)
    state_dict = model.state_dict()
    state_dict['stages.1.blocks.0.token_mixer.sfc_h.offset'] = torch.zeros(
        1, 32, 1, 1)
    with pytest.raises(ValueError, match='sfc_h.offset.*official formula'):
        CycleMLP(TINY).load_state_dict(state_dict)
    state_dict['stages.1.blocks.0.token_mixer.sfc_h.offset'] = torch.zeros(
        1, 30, 1, 1)
    with pytest.raises(ValueError, match='(?i)shape'):
        CycleMLP(TINY).load_converted(state_dict)


def test_offset_check_takes_the_channel_count_from_the_module(tiny_official):
    """An offset buffer that follows the official formula for another channel
    count (12 channels, for a 16-channel Cycle FC) is refused before anything
    is copied, naming the module's channel count. The check used to take the
    count from the tensor it checked, so it passed such a buffer (only the
    loader's generic shape check stopped it, without naming the Cycle FC)."""
    state_dict = dict(tiny_official)
    key = 'network.2.0.attn.sfc_h.offset'  # stage 1: 16 channels
    state_dict[key] = official_offset(12, (1, 3))
    model = CycleMLP(TINY)
    with pytest.raises(ValueError,
                       match=r'sfc_h\.offset.*shape \(1, 24, 1, 1\)'
                       r'.*16 input channels.*\(1, 32, 1, 1\)'):
        model.load_converted(state_dict)


def test_native_round_trip_and_detector_prefix(tiny_official, tmp_path):
    official = CycleMLP(TINY)
    report = official.load_converted(tiny_official)
    assert report.clean and not report.missing
    detector = {f'backbone.{k}': v for k, v in official.state_dict().items()}
    detector['neck.lateral_convs.0.conv.weight'] = torch.zeros(4, 8, 1, 1)
    path = save(dict(state_dict=detector), tmp_path)
    model = CycleMLP(TINY, init_cfg=dict(
        type='Pretrained', checkpoint=path, prefix='backbone.'))
    model.init_weights()
    report = model.load_pretrained(path, prefix='backbone.')
    assert report.key_format == 'native'
    assert report.clean and not report.missing and not report.reshaped
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        for a, b in zip(model.eval()(x), official.eval()(x)):
            assert torch.equal(a, b)


def test_imagenet_release_keeps_output_norms(tiny_official):
    imagenet = {k: v for k, v in tiny_official.items()
                if not k.startswith(('norm0', 'norm2', 'norm4', 'norm6'))}
    model = CycleMLP(TINY, out_indices=(1, 2, 3))
    report = model.load_converted(imagenet)
    assert report.clean
    assert sorted(report.expected_missing) == sorted(
        f'norm{i}.{p}' for i in (1, 2, 3) for p in ('weight', 'bias'))
    assert torch.equal(model.norm3.weight, torch.ones(32))


def test_converter_renames_only(tiny_official):
    converted, key_format = CycleMLP.convert_checkpoint(tiny_official)
    assert key_format == 'official'
    assert len(converted) == len(tiny_official)
    assert converted['stem.conv.weight'] is tiny_official[
        'patch_embed.proj.weight']
    assert converted['stages.1.blocks.1.token_mixer.reweight.fc2.bias'] is \
        tiny_official['network.2.1.attn.reweight.fc2.bias']
    assert converted['stages.3.downsample.conv.weight'] is tiny_official[
        'network.5.proj.weight']
    assert converted['norm2.bias'] is tiny_official['norm4.bias']


@pytest.mark.parametrize('arch', sorted(OFFICIAL_DENSE_PARAMS))
def test_arch_table_parameter_counts(arch):
    model = CycleMLP(arch)
    assert sum(p.numel() for p in model.parameters()) == \
        OFFICIAL_DENSE_PARAMS[arch]
    assert isinstance(model.stages[0].blocks[0].token_mixer, CycleMixer)
    assert isinstance(model.norm0, torch.nn.LayerNorm)
    assert model.norm0.eps == 1e-5


def test_drop_path_follows_official_schedule():
    model = CycleMLP('b1', drop_path_rate=0.2)
    rates = [
        getattr(block.drop_path, 'drop_prob', 0.0)
        for stage in model.stages for block in stage.blocks
    ]
    total = 10  # b1: 2 + 2 + 4 + 2 blocks
    assert rates == pytest.approx([0.2 * k / (total - 1)
                                   for k in range(total)])


@pytest.mark.parametrize('size', [(32, 32), (97, 131), (225, 225)])
def test_official_output_sizes(size):
    model = CycleMLP(dict(embed_dims=[8, 8, 8, 8], depths=[1, 1, 1, 1]))
    with torch.no_grad():
        outs = model.eval()(torch.randn(1, 3, *size))
    expected = [(s + 4 - 7) // 4 + 1 for s in size]
    for out in outs:
        assert tuple(out.shape[2:]) == tuple(expected)
        expected = [math.ceil(s / 2) for s in expected]


def test_argument_errors():
    with pytest.raises(ValueError, match="Unknown arch 'b6'.*'b1'"):
        CycleMLP('b6')
    with pytest.raises(ValueError, match='dim >= 4'):
        CycleMLP(dict(embed_dims=[2, 8, 8, 8], depths=[1, 1, 1, 1]))
    with pytest.raises(ValueError, match='mlp_ratios'):
        CycleMLP(dict(embed_dims=[8, 8, 8, 8], depths=[1, 1, 1, 1],
                      mlp_ratios=[4, 4, 0, 4]))
    with pytest.raises(ValueError, match='unknown keys.*skip_lam'):
        CycleMLP(dict(embed_dims=[8, 8, 8, 8], depths=[1, 1, 1, 1],
                      skip_lam=2.0))
    with pytest.raises(ValueError, match='kernel_size'):
        CycleFC(8, 8, (3, 3))
    with pytest.raises(ValueError, match='in_channels'):
        CycleFC(0, 8, (1, 3))
    with pytest.raises(TypeError):
        CycleMLP('b1', skip_lam=2.0)  # no swallowed keyword arguments


def test_onnx_export_matches_pytorch(tmp_path):
    """The backbone exports with standard ONNX operators only (no
    deformable convolution), with dynamic batch and spatial sizes, and
    onnxruntime reproduces PyTorch in fp32."""
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    model = CycleMLP(dict(embed_dims=[16, 24, 32, 48], depths=[1, 2, 1, 1]))
    model.init_weights()
    model.eval()
    path = str(tmp_path / 'cyclemlp.onnx')
    names = [f'out{i}' for i in range(4)]
    dynamic = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
    dynamic.update({n: {0: 'batch', 2: f'h{i}', 3: f'w{i}'}
                    for i, n in enumerate(names)})
    torch.onnx.export(
        model, (torch.randn(1, 3, 64, 96), ), path, dynamo=False,
        input_names=['input'], output_names=names, dynamic_axes=dynamic,
        opset_version=17)
    graph = onnx.load(path).graph
    assert {node.domain for node in graph.node} <= {'', 'ai.onnx'}
    assert not any('Deform' in node.op_type for node in graph.node)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for shape in [(1, 3, 64, 96), (2, 3, 97, 131)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = model(x)
        got = session.run(None, {'input': x.numpy()})
        assert len(got) == 4
        for a, b in zip(got, expected):
            assert a.shape == tuple(b.shape)
            assert (torch.from_numpy(a) - b).abs().max().item() <= 1e-4
