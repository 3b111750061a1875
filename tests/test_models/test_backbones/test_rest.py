"""ResT and ResTV2: parity with the official dense backbones, checkpoint
loading through the user path (ImageNet, detectron2 and mmseg layouts), any
input size, the 1x1 attention map, and the family-specific arguments."""
import functools
import math

import pytest
import torch

from mmmetaformer.models.backbones import ResT, ResTV2
from mmmetaformer.registry import MODELS
from mmmetaformer.testing import parity
from mmmetaformer.testing.rest_official import OfficialResT, OfficialResTV2
from .utils import save


TINY = dict(embed_dims=[8, 16, 16, 16], depths=[1, 1, 1, 1],
            num_heads=[1, 2, 2, 2])
# variant -> (class, arch, official reference model)
VARIANTS = {
    'rest_lite': (ResT, 'lite',
                  lambda: OfficialResT([64, 128, 256, 512], [2, 2, 2, 2])),
    'rest_small': (ResT, 'small',
                   lambda: OfficialResT([64, 128, 256, 512], [2, 2, 6, 2])),
    'restv2_tiny': (ResTV2, 'tiny',
                    lambda: OfficialResTV2([96, 192, 384, 768], [1, 2, 6, 2])),
}


@functools.lru_cache(maxsize=None)
def _filled(variant, kind):
    if kind == 'imagenet':
        record = parity.load_keys(variant)
        return parity.filled_state_dict(record['imagenet_checkpoint_keys'])
    return parity.official_dense_state_dict(
        variant, with_imagenet_only=kind == 'dense+imagenet')


def imagenet_state_dict(variant):
    """What the released ImageNet file holds, filled by the reference rule
    (a fresh dict of shared, never modified tensors)."""
    return dict(_filled(variant, 'imagenet'))


def dense_state_dict(variant, with_imagenet_only=False):
    """The official dense backbone's state_dict, filled (fresh dict)."""
    return dict(_filled(variant, 'dense+imagenet'
                        if with_imagenet_only else 'dense'))


# ------------------------------------------------------------------ parity
@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_parity_with_official_dense_backbone(variant, tmp_path):
    """The acceptance test: the official dense weights in the ImageNet
    release's container, loaded through ``init_cfg``, reproduce the official
    float64 outputs on both reference inputs to 1e-10."""
    cls, arch, _ = VARIANTS[variant]
    state_dict = dense_state_dict(variant, with_imagenet_only=True)
    path = save({'model': state_dict, 'epoch': 300}, tmp_path)
    model = cls(arch, init_cfg=dict(type='Pretrained', checkpoint=path))
    model = model.double()
    model.init_weights()
    report = model.load_pretrained(path)
    assert report.key_format == 'official-dense'
    assert report.clean and not report.missing and not report.reshaped
    assert len(report.loaded) == len(parity.load_keys(variant)['keys'])
    expected_ignored = ['head.bias', 'head.weight']
    if cls is ResTV2:
        expected_ignored += ['norm.bias', 'norm.weight']
    assert sorted(report.ignored) == sorted(expected_ignored)
    results = parity.parity_errors(model, parity.load_reference(variant))
    assert len(results) == 8 and all(r['shape_ok'] for r in results)
    assert parity.worst_error(results) <= 1e-10, results


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_reference_reimplementation_reproduces_the_reference(variant):
    """The literal re-implementation used below as the independent path is
    itself checked against the official outputs."""
    _, _, official = VARIANTS[variant]
    model = official().double()
    model.load_state_dict(dense_state_dict(variant))
    results = parity.parity_errors(model, parity.load_reference(variant),
                                   inputs=['input_a'])
    assert parity.worst_error(results) <= 1e-10


@pytest.mark.parametrize('variant', ['rest_lite', 'restv2_tiny'])
def test_same_as_official_where_it_runs_and_runs_where_it_fails(variant):
    """Identical outputs on the sizes the official code accepts; on the others
    the official formulation raises while this backbone returns maps of
    ceil(H / s) x ceil(W / s)."""
    cls, arch, official = VARIANTS[variant]
    state_dict = dense_state_dict(variant)
    ours = cls(arch).double().eval()
    report = ours.load_converted(state_dict)
    assert report.clean
    reference = official().double().eval()
    reference.load_state_dict(state_dict)
    runs = [(64, 64), (96, 160)] + ([(32, 64)] if cls is ResTV2 else [])
    fails = [(100, 100), (65, 97)] + ([(32, 32)] if cls is ResT else [])
    torch.manual_seed(0)
    with torch.no_grad():
        for size in runs:
            x = torch.randn(1, 3, *size, dtype=torch.float64)
            for a, b in zip(ours(x), reference(x)):
                assert a.shape == b.shape
                assert (a - b).abs().max() <= 1e-10 * b.abs().max()
        for size in fails:
            x = torch.randn(1, 3, *size, dtype=torch.float64)
            with pytest.raises((RuntimeError, ValueError)):
                reference(x)
            outs = ours(x)
            for out, stride in zip(outs, (4, 8, 16, 32)):
                assert out.shape[2:] == tuple(
                    math.ceil(s / stride) for s in size)
                assert torch.isfinite(out).all()


# ----------------------------------------------------------------- loading
@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_imagenet_release_loads_with_expected_missing_norms(variant,
                                                            tmp_path):
    cls, arch, _ = VARIANTS[variant]
    path = save({'model': imagenet_state_dict(variant)}, tmp_path)
    model = cls(arch)
    report = model.load_pretrained(path)
    assert report.key_format == 'official'
    assert report.clean and not report.unexpected
    if cls is ResT:
        # norm1..3 (ours: norm0..2) do not exist in the classifier; the final
        # norm is the stage-4 output norm and is loaded
        assert sorted(report.expected_missing) == [
            f'norm{i}.{p}' for i in range(3) for p in ('bias', 'weight')]
        assert 'norm3.weight' in report.loaded
        assert sorted(report.ignored) == ['head.bias', 'head.weight']
    else:
        assert sorted(report.expected_missing) == [
            f'norm{i}.{p}' for i in range(4) for p in ('bias', 'weight')]
        assert sorted(report.ignored) == [
            'head.bias', 'head.weight', 'norm.bias', 'norm.weight']
    assert torch.equal(model.stages[1].blocks[0].token_mixer.q.weight,
                       imagenet_state_dict(variant)['stage2.0.attn.q.weight']
                       .float())


@pytest.mark.parametrize('variant', ['rest_lite', 'restv2_tiny'])
def test_detectron2_checkpoint_with_prefix(variant, tmp_path):
    """A detectron2 model checkpoint: backbone under
    ``backbone.bottom_up.``, FPN and heads beside it."""
    cls, arch, _ = VARIANTS[variant]
    dense = dense_state_dict(variant)
    ckpt = {f'backbone.bottom_up.{k}': v for k, v in dense.items()}
    ckpt['backbone.fpn_lateral2.weight'] = torch.zeros(256, 64, 1, 1)
    ckpt['roi_heads.box_predictor.cls_score.weight'] = torch.zeros(81, 1024)
    path = save({'model': ckpt, 'iteration': 90000}, tmp_path)
    model = cls(arch, init_cfg=dict(type='Pretrained', checkpoint=path,
                                    prefix='backbone.bottom_up.'))
    model.init_weights()
    report = model.load_pretrained(path, prefix='backbone.bottom_up.')
    assert report.key_format == 'official-dense'
    assert report.clean and not report.missing and not report.ignored
    assert len(report.loaded) == len(dense)


@pytest.mark.parametrize('container', ['state_dict', 'model', 'flat'])
@pytest.mark.parametrize('naming', ['mmseg', 'detectron2'])
def test_restv2_output_norm_namings_in_any_container(container, naming,
                                                     tmp_path):
    """mmseg UperNet checkpoints name the output norms ``norm_k.*``,
    detectron2 ``norm_k.0.*``: both load, from any container, into the same
    weights."""
    dense = dense_state_dict('restv2_tiny')
    if naming == 'mmseg':
        dense = {(k.replace('.0.', '.', 1) if k.startswith('norm_') else k):
                 v for k, v in dense.items()}
        assert 'norm_1.weight' in dense
    ckpt = {'backbone.' + k: v for k, v in dense.items()}
    ckpt['decode_head.conv_seg.weight'] = torch.zeros(150, 512, 1, 1)
    path = save(ckpt if container == 'flat' else {container: ckpt},
                tmp_path)
    a = ResTV2('tiny').double()
    report = a.load_pretrained(path, prefix='backbone.')
    assert report.key_format == 'official-dense'
    assert report.clean and not report.missing and not report.ignored
    b = ResTV2('tiny').double()
    b.load_converted(dense_state_dict('restv2_tiny'))
    for (name, p), (_, q) in zip(a.state_dict().items(),
                                 b.state_dict().items()):
        assert torch.equal(p, q), name


def test_retinanet_checkpoint_without_stage1_norm(tmp_path):
    """The official RetinaNet backbone returns stages 2-4 and has no
    ``norm1``; a Mask R-CNN checkpoint's ``norm1`` is not used by a model
    that does not return stage 1."""
    dense = dense_state_dict('rest_lite')
    retina = {k: v for k, v in dense.items() if not k.startswith('norm1.')}
    model = ResT('lite', out_indices=(1, 2, 3))
    report = model.load_converted(retina)
    assert report.clean and not report.missing and not report.ignored
    report = model.load_converted(dense)
    assert report.clean and sorted(report.ignored) == [
        'norm0.bias', 'norm0.weight']
    # a model returning stage 1 misses its norm in a RetinaNet checkpoint
    report = ResT('lite').load_converted(retina)
    assert not report.clean
    assert sorted(report.missing) == ['norm0.bias', 'norm0.weight']


def test_out_norm_in_trunk_matches_official_out_features():
    """ResT v1's stage-k norm feeds stage k + 1: a model returning stages
    2-4 equals the official backbone with OUT_FEATURES stage2-4."""
    dense = dense_state_dict('rest_lite')
    retina = {k: v for k, v in dense.items() if not k.startswith('norm1.')}
    ours = ResT('lite', out_indices=(1, 2, 3)).double().eval()
    ours.load_converted(retina)
    reference = OfficialResT([64, 128, 256, 512], [2, 2, 2, 2],
                             out_stages=(2, 3, 4)).double().eval()
    reference.load_state_dict(retina)
    x = torch.randn(1, 3, 64, 96, dtype=torch.float64)
    with torch.no_grad():
        outs, refs = ours(x), reference(x)
        full = ResT('lite').double().eval()
        full.load_converted(dense)
        full_outs = full(x)
    assert len(outs) == len(refs) == 3
    for a, b in zip(outs, refs):
        assert (a - b).abs().max() <= 1e-10 * b.abs().max()
    # the stage-1 norm changes what the later stages see
    assert not torch.allclose(outs[0], full_outs[1])


def test_converters_rename_every_official_name():
    tensors = {
        'stem.conv1.weight': 'stem.proj.0.weight',
        'stem.norm1.running_var': 'stem.proj.1.running_var',
        'stem.conv2.weight': 'stem.proj.3.weight',
        'stem.norm2.bias': 'stem.proj.4.bias',
        'stem.conv3.weight': 'stem.proj.6.weight',
        'stem.pos.pa_conv.weight': 'stem.pos.pa_conv.weight',
        'patch_embed_2.conv.bias': 'stages.1.downsample.proj.0.bias',
        'patch_embed_3.norm.weight': 'stages.2.downsample.proj.1.weight',
        'patch_embed_4.pos.pa_conv.bias':
        'stages.3.downsample.pos.pa_conv.bias',
        'stage1.1.attn.sr_norm.weight':
        'stages.0.blocks.1.token_mixer.sr_norm.weight',
        'stage3.5.attn.transform_conv.weight':
        'stages.2.blocks.5.token_mixer.transform_conv.weight',
        'stage4.0.norm2.bias': 'stages.3.blocks.0.norm2.bias',
        'stage2.1.mlp.fc1.weight': 'stages.1.blocks.1.mlp.fc1.weight',
        'norm1.weight': 'norm0.weight',
        'norm3.bias': 'norm2.bias',
        'norm.weight': 'norm3.weight',
        'head.weight': 'head.weight',
    }
    converted, key_format = ResT.convert_checkpoint({k: k for k in tensors})
    assert key_format == 'official-dense'
    assert {v: k for k, v in converted.items()} == tensors
    tensors_v2 = {
        'stem.proj.6.bias': 'stem.proj.6.bias',
        'stem.norm.weight': 'stem.norm.weight',
        'patch_2.proj.weight': 'stages.1.downsample.proj.0.weight',
        'patch_3.pos.pa_conv.weight': 'stages.2.downsample.pos.pa_conv.weight',
        'patch_4.norm.bias': 'stages.3.downsample.norm.bias',
        'stage1.0.attn.up.0.weight':
        'stages.0.blocks.0.token_mixer.up.0.weight',
        'stage4.1.attn.up_norm.bias':
        'stages.3.blocks.1.token_mixer.up_norm.bias',
        'norm_1.0.weight': 'norm0.weight',
        'norm_4.bias': 'norm3.bias',
        'norm.weight': 'norm.weight',
        'head.bias': 'head.bias',
    }
    converted, key_format = ResTV2.convert_checkpoint(
        {k: k for k in tensors_v2})
    assert key_format == 'official-dense'
    assert {v: k for k, v in converted.items()} == tensors_v2
    # native keys pass unchanged
    native = ResTV2(dict(TINY)).state_dict()
    converted, key_format = ResTV2.convert_checkpoint(native)
    assert key_format == 'native' and list(converted) == list(native)


def test_native_checkpoint_round_trip(tmp_path):
    """A checkpoint of this package (mmdet/mmseg layout) loads back."""
    model = ResT(dict(TINY)).eval()
    path = save({'state_dict': {f'backbone.{k}': v
                                for k, v in model.state_dict().items()}},
                tmp_path)
    other = ResT(dict(TINY), init_cfg=dict(
        type='Pretrained', checkpoint=path, prefix='backbone.')).eval()
    other.init_weights()
    x = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        for a, b in zip(model(x), other(x)):
            assert torch.equal(a, b)


# -------------------------------------------------------------- input size
SWEEP = [32, 33, 47, 64, 95, 97, 131, 200, 225, 256, 319, 513, 1024]


@pytest.mark.parametrize('cls', [ResT, ResTV2])
def test_size_sweep_tiny(cls):
    """Every size in [32, 1024] (odd ones included) runs; maps are
    ceil(H / s) x ceil(W / s) and finite (square sizes and mixed pairs)."""
    model = cls(dict(TINY)).eval()
    sizes = [(s, s) for s in SWEEP] + list(zip(SWEEP, reversed(SWEEP)))
    with torch.no_grad():
        for h, w in sizes:
            outs = model(torch.randn(1, 3, h, w))
            for out, stride in zip(outs, (4, 8, 16, 32)):
                assert out.shape[2:] == (math.ceil(h / stride),
                                         math.ceil(w / stride)), (h, w)
                assert torch.isfinite(out).all(), (h, w)


# ---------------------------------------------------------------- behaviour
def test_norm_eval_keeps_stem_batchnorm_statistics():
    for cls in (ResT, ResTV2):
        model = cls(dict(TINY), norm_eval=True).train()
        bn = model.stem.proj[1]
        before = bn.running_mean.clone()
        model(torch.randn(2, 3, 64, 64))
        assert torch.equal(bn.running_mean, before)
        model = cls(dict(TINY), norm_eval=False).train()
        bn = model.stem.proj[1]
        before = bn.running_mean.clone()
        model(torch.randn(2, 3, 64, 64))
        assert not torch.equal(bn.running_mean, before)


def test_arch_tables():
    """Parameter counts of the dense backbones (official stage-4 norm
    included for v1) equal those computed from the official definitions in
    shared/spec/rest.md."""
    expected = {
        (ResT, 'lite'): 9_996_196, (ResT, 'small'): 13_167_604,
        (ResT, 'base'): 29_559_396, (ResT, 'large'): 50_908_500,
        (ResTV2, 'tiny'): 29_667_120, (ResTV2, 'small'): 40_438_320,
        (ResTV2, 'base'): 55_197_552,
    }
    for (cls, arch), count in expected.items():
        model = cls(arch)
        assert sum(p.numel() for p in model.parameters()) == count, arch
    # large: the classifier's depths (86,532,520 with norm and head)
    large = ResTV2('large')
    dense = sum(p.numel() for p in large.parameters())
    classifier_extra = 1024 * 2 + 1024 * 1000 + 1000  # norm + head
    dense_norms = 2 * (128 + 256 + 512 + 1024)
    assert dense - dense_norms + classifier_extra == 86_532_520


@pytest.mark.parametrize(
    'cls, arch, message',
    [(ResT, dict(TINY, num_heads=[1, 3, 2, 2]), 'divisible'),
     (ResTV2, dict(TINY, sr_ratios=[8, 4, 2.5, 1]),
      r"sr_ratios'\] of stage 2 is 2.5.*positive int"),
     (ResT, dict(TINY, num_heads=[1, 2]), 'num_heads'),
     (ResT, dict(TINY, mlp_ratios=0), 'mlp_ratios'),
     (ResTV2, 'huge', 'valid choices')])
def test_family_argument_errors(cls, arch, message):
    with pytest.raises(ValueError, match=message):
        cls(arch)


def test_registered_in_downstream_registries():
    assert MODELS.get('ResT') is ResT and MODELS.get('ResTV2') is ResTV2
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmseg.registry import MODELS as MMSEG_MODELS
    assert MMDET_MODELS.get('ResT') is ResT
    assert MMSEG_MODELS.get('ResTV2') is ResTV2


@pytest.mark.parametrize('cls, arch, count', [
    (ResT, 'lite', 9_996_196), (ResT, 'small', 13_167_604),
    (ResT, 'base', 29_559_396), (ResT, 'large', 50_908_500),
    (ResTV2, 'tiny', 29_667_120), (ResTV2, 'small', 40_438_320),
    (ResTV2, 'base', 55_197_552)])
def test_parameter_counts_of_the_official_dense_backbones(cls, arch, count):
    """shared/spec/rest.md: parameters of the official dense backbones (all
    four outputs; BatchNorm running statistics are buffers)."""
    assert sum(p.numel() for p in cls(arch).parameters()) == count
