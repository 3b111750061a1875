"""ResMLP: parity with the official deit network (pre- and post-norm taps)
through the user path, fill rule v1.1, the 448 x 448 tile identity with the
real S12 weights, timm checkpoints, B24's stride-8 pyramid, parameter
counts."""
import pytest
import torch

from mmmetaformer.models.backbones.resmlp import ResMLP
from mmmetaformer.testing import mlp_official, parity
from .utils import save


@pytest.fixture(scope='module')
def s12_official():
    return parity.official_dense_state_dict('resmlp_12',
                                            with_imagenet_only=True)


def official_to_timm(key, value):
    """deit name -> timm name (shared/spec: ``patch_embed.`` -> ``stem.``,
    ``attn.`` -> ``linear_tokens.``, ``mlp.`` -> ``mlp_channels.``,
    ``gamma_`` -> ``ls``; ``alpha``/``beta`` reshaped to (1, 1, C))."""
    key = (key.replace('patch_embed.', 'stem.').replace(
        '.attn.', '.linear_tokens.').replace('.mlp.', '.mlp_channels.')
           .replace('.gamma_', '.ls'))
    if key.endswith(('.alpha', '.beta')):
        value = value.reshape(1, 1, -1)
    return key, value


@pytest.mark.parametrize('variant, arch', [('resmlp_12', 's12'),
                                           ('resmlp_24', 's24')])
@pytest.mark.parametrize('tap, out_norm', [(0, None), (1, 'default')])
def test_parity_with_official_model(variant, arch, tap, out_norm, tmp_path):
    """Official flat file through ``init_cfg``: tokens after the last block
    (``out_norm=None``) and after the final Affine."""
    path = save(parity.official_dense_state_dict(
        variant, with_imagenet_only=True), tmp_path)
    model = ResMLP(arch, simple_fpn=False, out_indices=2, out_norm=out_norm,
                   init_cfg=dict(type='Pretrained', checkpoint=path))
    model.double().init_weights()
    report = model.load_pretrained(path)
    assert report.key_format == 'official'
    assert report.clean and not report.missing
    ignored = ['head.bias', 'head.weight'] + (
        ['norm.alpha', 'norm.beta'] if out_norm is None else [])
    assert sorted(report.ignored) == ignored
    results = parity.parity_errors(model, parity.load_reference(variant),
                                   ref_outputs=[tap])
    assert results[0]['tap'].startswith('blocks' if tap == 0 else 'norm')
    assert parity.worst_error(results) <= 1e-10, results


def test_fill_rule_v1_1_matches_reference_checksums(s12_official):
    """Rows 6a-6c (alpha, beta, gamma_*) reproduce the stored sums."""
    ref = parity.load_reference('resmlp_12')
    assert ref['fill_rule_version'] in parity.SUPPORTED_FILL_RULES
    sums = ref['fill_checksums']['per_key_sum']
    assert set(sums) == set(s12_official)
    for key, value in sums.items():
        got = s12_official[key].sum().item()
        assert got == pytest.approx(value, rel=1e-12, abs=1e-12), key
    v = 2 * parity.uniform_stream('blocks.3.gamma_2', 384) - 1
    assert torch.equal(s12_official['blocks.3.gamma_2'],
                       torch.from_numpy(0.1 + 0.05 * v))


def test_448_equals_the_official_network_on_four_tiles(s12_official):
    """The spec's check: ResMLP-S12 with 14 x 14 windows at 448 x 448 equals
    the official trunk run on the four 224 x 224 tiles."""
    model = ResMLP('s12', simple_fpn=False, out_indices=2).double().eval()
    model.load_converted(s12_official)
    x = parity.make_input('tiles', (1, 3, 448, 448))
    with torch.no_grad():
        ours = model(x)[0]
        tiles = mlp_official.run_on_tiles(mlp_official.resmlp_official,
                                          s12_official, x)[1]
    assert ours.shape == (1, 384, 28, 28)
    assert (ours - tiles).abs().max().item() <= 1e-10 * tiles.abs().max()


def test_functional_reference_reproduces_the_official_outputs(s12_official):
    x = parity.make_input('input_a', (1, 3, 224, 224))
    with torch.no_grad():
        outs = mlp_official.resmlp_official(s12_official, x)
    refs = parity.load_reference('resmlp_12')['outputs']['input_a']
    for out, ref in zip(outs, refs):
        err = parity.compare_output(out, ref)
        assert max(err['sum_err'], err['sumsq_err'], err['slice_err']) <= (
            1e-10), err
    with pytest.raises(ValueError, match='196 tokens'):
        mlp_official.resmlp_official(
            s12_official, torch.zeros(1, 3, 240, 240, dtype=torch.float64))


def test_timm_checkpoint(s12_official, tmp_path):
    timm_sd = dict(official_to_timm(k, v) for k, v in s12_official.items())
    assert timm_sd['norm.alpha'].shape == (1, 1, 384)
    model = ResMLP('s12').double()
    report = model.load_pretrained(save(timm_sd, tmp_path))
    assert report.key_format == 'timm' and report.clean
    official = ResMLP('s12').double()
    official.load_converted(s12_official)
    official.pyramid.load_state_dict(model.pyramid.state_dict())
    x = torch.randn(1, 3, 64, 96, dtype=torch.float64)
    with torch.no_grad():
        for a, b in zip(model.eval()(x), official.eval()(x)):
            assert torch.equal(a, b)


def test_b24_pyramid_from_stride_8():
    """Patch 8: x2, identity, max-pool 2, max-pool 4; channels C/2, C, C, C
    (B24: 384, 768, 768, 768)."""
    model = ResMLP(dict(embed_dims=16, depths=1, patch_size=8,
                        window=4)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 72, 100))  # grid 9 x 13
    # ceil(H / s) x ceil(W / s): the x2 level (18 x 26 over the padded
    # image) is cropped to 18 x 25
    assert [tuple(o.shape[1:]) for o in outs] == [
        (8, 18, 25), (16, 9, 13), (16, 5, 7), (16, 3, 4)]
    with torch.device('meta'):
        b24 = ResMLP('b24')
    assert b24.out_channels == (384, 768, 768, 768)


def test_layer_scale_init_values():
    for arch, value in (('s12', 0.1), ('s24', 1e-5), ('s36', 1e-6),
                        ('b24', 1e-6)):
        assert ResMLP.arch_settings[arch]['layer_scale_init_value'] == value
    model = ResMLP(dict(embed_dims=8, depths=1, layer_scale_init_value=0.5))
    block = model.stages[0].blocks[0]
    assert torch.all(block.layer_scale1.scale == 0.5)


@pytest.mark.parametrize('arch, count', [('s12', 14_965_872),
                                         ('s24', 29_635_680),
                                         ('s36', 44_305_488),
                                         ('b24', 128_369_280)])
def test_parameter_counts_of_the_official_trunks(arch, count):
    """shared/spec: parameters without the head (final Affine included)."""
    with torch.device('meta'):
        model = ResMLP(arch, simple_fpn=False,
                       out_indices=1 if arch == 'b24' else 2)
    assert sum(p.numel() for p in model.parameters()) == count


def test_imagenet_url():
    assert ResMLP.imagenet_url('s12') == (
        'https://dl.fbaipublicfiles.com/deit/resmlp_12_dist.pth')
    assert ResMLP.imagenet_url('b24', distilled=False).endswith(
        '/resmlpB_24_no_dist.pth')
    with pytest.raises(ValueError, match='valid choices'):
        ResMLP.imagenet_url('s48')
