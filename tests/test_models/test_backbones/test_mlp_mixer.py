"""MLPMixer: parity with the official Flax network (pre- and post-norm taps)
through the user path, the official ``.npz`` and timm checkpoints, the
windowed token mixing (tile identity at 448 x 448; the layer itself is
tested in test_layers/test_token_mixing.py), the simple feature pyramid,
sizes and parameter counts."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmmetaformer.models.backbones.mlp_mixer import MLPMixer
from mmmetaformer.testing import mlp_official, parity
from .utils import save

TINY = dict(embed_dims=16, depths=2, tokens_mlp_dim=8)


@pytest.fixture(scope='module')
def b16_timm():
    """The reference's filled weights under timm-style names (the names of
    timm's ``jx_mixer_b16_224`` re-host), classifier included."""
    return parity.official_dense_state_dict('mixer_b16',
                                            with_imagenet_only=True)


def flax_npz(state_dict, tmp_path):
    """The weights as the official Flax ``.npz`` (paths and layouts from the
    reference's ``flax_param_map``, independent of the converter)."""
    record = parity.load_keys('mixer_b16')
    arrays = {}
    for key, path, shape, transform in record['flax_param_map']:
        value = state_dict[key].numpy()
        if transform.startswith('transpose(2, 3, 1, 0)'):
            value = value.transpose(2, 3, 1, 0)
        elif transform.startswith('transpose(1, 0)'):
            value = value.T
        else:
            assert transform.startswith('none'), transform
        assert list(value.shape) == list(shape), (key, path)
        arrays[path] = np.ascontiguousarray(value)
    path = tmp_path / 'Mixer-B_16.npz'
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize('tap, out_norm', [(0, None), (1, 'default')])
def test_parity_with_official_model(b16_timm, tap, out_norm, tmp_path):
    """timm-keyed file through ``init_cfg``: the last block's output
    (``out_norm=None``) and the ``pre_head_layer_norm`` output."""
    path = save(b16_timm, tmp_path)
    model = MLPMixer('b16', simple_fpn=False, out_indices=2,
                     out_norm=out_norm,
                     init_cfg=dict(type='Pretrained', checkpoint=path))
    model.double().init_weights()
    report = model.load_pretrained(path)
    assert report.key_format == 'timm' and report.clean
    assert not report.missing
    ignored = ['head.bias', 'head.weight'] + (
        ['norm.bias', 'norm.weight'] if out_norm is None else [])
    assert sorted(report.ignored) == ignored
    results = parity.parity_errors(model, parity.load_reference('mixer_b16'),
                                   ref_outputs=[tap])
    assert parity.worst_error(results) <= 1e-10, results


def test_official_npz_checkpoint(b16_timm, tmp_path):
    """The Flax ``.npz`` (kernels transposed on load, read without
    pickles) gives the post-norm reference too."""
    path = flax_npz(b16_timm, tmp_path)
    model = MLPMixer('b16', simple_fpn=False, out_indices=2).double()
    report = model.load_pretrained(path)
    assert report.key_format == 'official' and report.clean
    assert sorted(report.ignored) == ['head.bias', 'head.weight']
    results = parity.parity_errors(model, parity.load_reference('mixer_b16'),
                                   ref_outputs=[1])
    assert parity.worst_error(results) <= 1e-10, results


def test_npz_with_pickles_is_refused(tmp_path):
    path = tmp_path / 'evil.npz'
    np.savez(path, obj=np.array([{'a': 1}], dtype=object))
    with pytest.raises(ValueError, match='without pickles'):
        MLPMixer(TINY).load_pretrained(str(path))


def test_exact_gelu_does_not_match_the_official_weights(b16_timm):
    """timm's erf GELU is not what the official network computes."""
    model = MLPMixer('b16', act='GELU', simple_fpn=False,
                     out_indices=2).double()
    model.load_converted(b16_timm)
    results = parity.parity_errors(model, parity.load_reference('mixer_b16'),
                                   ref_outputs=[1])
    assert parity.worst_error(results) > 1e-5


def test_functional_reference_reproduces_the_official_outputs(b16_timm):
    x = parity.make_input('input_a', (1, 3, 224, 224))
    with torch.no_grad():
        outs = mlp_official.mixer_official(b16_timm, x)
    refs = parity.load_reference('mixer_b16')['outputs']['input_a']
    for out, ref in zip(outs, refs):
        err = parity.compare_output(out, ref)
        assert max(err['sum_err'], err['sumsq_err'], err['slice_err']) <= (
            1e-10), err


def tiny_timm_state_dict(dim=16, depth=2, tokens=8, patch=16, window=14):
    """Weights of a small Mixer under timm names, filled by the reference
    rule."""
    n = window * window
    shapes = {'stem.proj.weight': (dim, 3, patch, patch),
              'stem.proj.bias': (dim, ), 'norm.weight': (dim, ),
              'norm.bias': (dim, )}
    for i in range(depth):
        p = f'blocks.{i}.'
        shapes.update({
            p + 'norm1.weight': (dim, ), p + 'norm1.bias': (dim, ),
            p + 'mlp_tokens.fc1.weight': (tokens, n),
            p + 'mlp_tokens.fc1.bias': (tokens, ),
            p + 'mlp_tokens.fc2.weight': (n, tokens),
            p + 'mlp_tokens.fc2.bias': (n, ),
            p + 'norm2.weight': (dim, ), p + 'norm2.bias': (dim, ),
            p + 'mlp_channels.fc1.weight': (4 * dim, dim),
            p + 'mlp_channels.fc1.bias': (4 * dim, ),
            p + 'mlp_channels.fc2.weight': (dim, 4 * dim),
            p + 'mlp_channels.fc2.bias': (dim, )})
    return {k: parity.fill_tensor(k, s) for k, s in shapes.items()}


@pytest.mark.parametrize('out_norm, tap', [(None, 0), ('default', 1)])
def test_448_equals_the_official_network_on_four_tiles(out_norm, tap):
    """Windowed token mixing in 14 x 14 windows: at 448 x 448 the trunk is
    the official network applied to each 224 x 224 tile."""
    state_dict = tiny_timm_state_dict()
    model = MLPMixer(TINY, simple_fpn=False, out_indices=2,
                     out_norm=out_norm).double().eval()
    assert model.load_converted(state_dict).clean
    x = parity.make_input('tiles', (2, 3, 448, 448))
    with torch.no_grad():
        ours = model(x)[0]
        tiles = mlp_official.run_on_tiles(mlp_official.mixer_official,
                                          state_dict, x)[tap]
    assert ours.shape == (2, 16, 28, 28)
    assert (ours - tiles).abs().max().item() <= 1e-10 * tiles.abs().max()


@pytest.mark.parametrize('size, expected', [
    ((224, 224), [(56, 56), (28, 28), (14, 14), (7, 7)]),
    ((225, 225), [(57, 57), (29, 29), (15, 15), (8, 8)]),
    ((200, 300), [(50, 75), (25, 38), (13, 19), (7, 10)]),
    ((97, 131), [(25, 33), (13, 17), (7, 9), (4, 5)]),
    ((32, 32), [(8, 8), (4, 4), (2, 2), (1, 1)]),
    ((64, 45), [(16, 12), (8, 6), (4, 3), (2, 2)]),
    ((33, 100), [(9, 25), (5, 13), (3, 7), (2, 4)])])
def test_output_sizes(size, expected):
    """``ceil(H / s)`` x ``ceil(W / s)`` at strides 4, 8, 16, 32, as every
    other family (mmseg resizes logits to the input: a map covering the
    padded image would stretch the prediction)."""
    model = MLPMixer(TINY).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, *size))
    assert [tuple(o.shape[2:]) for o in outs] == expected
    assert [o.shape[1] for o in outs] == [4, 8, 16, 16]
    assert model.out_channels == (4, 8, 16, 16)
    assert all(o.is_contiguous() and torch.isfinite(o).all() for o in outs)


def test_cropped_levels_are_the_top_left_of_the_pyramid():
    """The crop keeps the part of the up-sampled maps over the image (the
    zero padding is at the bottom/right)."""
    model, outs, base = _pyramid_and_single_map((225, 97))
    with torch.no_grad():
        full = model.pyramid(base)
    for out, level in zip(outs, full):
        rows, cols = out.shape[2:]
        assert torch.equal(out, level[:, :, :rows, :cols])
    assert tuple(full[0].shape[2:]) == (60, 28)


def _pyramid_and_single_map(size):
    """A tiny Mixer, its 4 levels on a random input of ``size`` and the
    stride-16 map of the same weights without the pyramid."""
    torch.manual_seed(0)
    model = MLPMixer(TINY).eval()
    single = MLPMixer(TINY, simple_fpn=False, out_indices=2).eval()
    single.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        outs, (base, ) = model(x), single(x)
    return model, outs, base


def test_pyramid_levels_come_from_the_normalised_map():
    model, outs, base = _pyramid_and_single_map((80, 112))
    assert torch.equal(outs[2], base)
    assert torch.equal(outs[3], F.max_pool2d(base, 2, 2, ceil_mode=True))
    assert torch.allclose(outs[1], model.pyramid.fpn1(base))


def test_imagenet_file_reports_the_pyramid(tmp_path):
    state_dict = tiny_timm_state_dict()
    report = MLPMixer(TINY).load_converted(state_dict)
    assert report.clean
    assert sorted(report.expected_missing) == sorted(
        f'pyramid.fpn{i}.{j}.{p}' for i, js in ((0, (0, 1, 3)), )
        for j in js for p in ('weight', 'bias')) + [
            'pyramid.fpn1.bias', 'pyramid.fpn1.weight']


@pytest.mark.parametrize('kwargs, message', [
    (dict(simple_fpn=False), 'out_indices must be'),
    (dict(arch=dict(TINY, patch_size=32)), 'patch_size'),
    (dict(act='ReLU'), 'act'),
    (dict(out_norm=dict(type='LN')), 'out_norm'),
    (dict(arch=dict(embed_dims=16, depths=2)), 'tokens_mlp_dim'),
])
def test_mixer_argument_errors(kwargs, message):
    args = dict(arch=TINY)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        MLPMixer(**args)


@pytest.mark.parametrize('arch, count', [('s16', 18_015_264),
                                         ('b16', 59_111_472),
                                         ('l16', 207_171_168)])
def test_parameter_counts_of_the_official_trunks(arch, count):
    """timm's classifier counts (shared/spec) minus the head (C x 1000 +
    1000); B/16 = the reference's ``n_params_dense_backbone``."""
    with torch.device('meta'):
        model = MLPMixer(arch, simple_fpn=False, out_indices=2)
    assert sum(p.numel() for p in model.parameters()) == count
    if arch == 'b16':
        with open(f'{parity.reference_dir()}/mixer_b16.keys.json') as f:
            assert json.load(f)['n_params_dense_backbone'] == count


def test_imagenet_url():
    assert MLPMixer.imagenet_url('b16') == (
        'https://storage.googleapis.com/mixer_models/imagenet1k/'
        'Mixer-B_16.npz')
    with pytest.raises(ValueError, match='valid choices'):
        MLPMixer.imagenet_url('s16')
