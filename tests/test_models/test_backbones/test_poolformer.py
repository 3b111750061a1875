"""PoolFormer v1: parity with the official dense models, checkpoint loading
through the user path, and the official output sizes."""
import logging
import math
import pickle

import pytest
import torch

from mmmetaformer.checkpoint import load_checkpoint_file
from mmmetaformer.models.backbones import PoolFormer
from mmmetaformer.testing import parity
from .utils import save



def official_to_timm(key):
    """Official PoolFormer v1 name -> timm name, from the mapping table in
    shared/spec/checkpoints.md (written independently of the converter)."""
    parts = key.split('.')
    if parts[0] == 'patch_embed':
        return 'stem.conv.' + parts[-1]
    if parts[0] == 'network':
        index = int(parts[1])
        if index % 2:  # downsampler in front of stage (index + 1) / 2
            return f'stages.{(index + 1) // 2}.downsample.conv.{parts[-1]}'
        rest = '.'.join(parts[3:])
        rest = rest.replace('layer_scale_1', 'layer_scale1.scale')
        rest = rest.replace('layer_scale_2', 'layer_scale2.scale')
        return f'stages.{index // 2}.blocks.{parts[2]}.{rest}'
    if parts[0] == 'norm':
        return 'head.norm.' + parts[-1]
    if parts[0] == 'head':
        return 'head.fc.' + parts[-1]
    raise KeyError(key)


@pytest.fixture(scope='module')
def s12_official():
    return parity.official_dense_state_dict(
        'poolformer_s12', with_imagenet_only=True)


@pytest.mark.parametrize('variant, arch', [('poolformer_s12', 's12'),
                                           ('poolformer_m36', 'm36')])
def test_parity_with_official_dense_model(variant, arch, tmp_path):
    """The acceptance test: official weights (filled by the reference rule),
    loaded from a flat file through ``init_cfg``, reproduce the official
    float64 outputs on both reference inputs."""
    state_dict = parity.official_dense_state_dict(
        variant, with_imagenet_only=True)
    path = save(state_dict, tmp_path)
    model = PoolFormer(
        arch, init_cfg=dict(type='Pretrained', checkpoint=path)).double()
    model.init_weights()  # the user path: init_cfg -> converter -> load
    report = model.load_pretrained(path)  # again, to inspect the report
    assert report.key_format == 'official'
    assert report.clean and not report.missing
    assert sorted(report.ignored) == [
        'head.bias', 'head.weight', 'norm.bias', 'norm.weight'
    ]
    assert len(report.loaded) == len(parity.load_keys(variant)['keys'])
    results = parity.parity_errors(model, parity.load_reference(variant))
    assert len(results) == 8  # 2 inputs x 4 maps
    assert all(r['shape_ok'] for r in results)
    worst = parity.worst_error(results)
    assert worst <= 1e-10, results


def test_fill_rule_matches_reference_checksums(s12_official):
    sums = parity.load_reference(
        'poolformer_s12')['fill_checksums']['per_key_sum']
    # the reference checksums cover the dense module's entries
    dense_keys = {k for k, _, _ in parity.load_keys('poolformer_s12')['keys']}
    assert set(sums) == dense_keys
    for key, value in sums.items():
        got = s12_official[key].double().sum().item()
        assert got == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_dense_checkpoint_with_prefix(s12_official, tmp_path):
    """An mmdet 2.x Mask R-CNN checkpoint: ``state_dict`` with ``backbone.``
    keys next to neck/head keys."""
    detector = {f'backbone.{k}': v for k, v in s12_official.items()
                if not k.startswith(('norm.', 'head.'))}
    detector['neck.lateral_convs.0.conv.weight'] = torch.zeros(256, 64, 1, 1)
    path = save(dict(state_dict=detector, meta=dict(epoch=12)), tmp_path)
    model = PoolFormer('s12', init_cfg=dict(
        type='Pretrained', checkpoint=path, prefix='backbone.'))
    model.init_weights()
    report = model.load_pretrained(path, prefix='backbone.')
    assert report.clean and not report.missing and not report.ignored
    reference = PoolFormer('s12')
    reference.load_converted(s12_official)
    for (name, a), b in zip(model.state_dict().items(),
                            reference.state_dict().values()):
        assert torch.equal(a, b), name


def test_retinanet_checkpoint_without_norm0(s12_official, tmp_path):
    """RetinaNet checkpoints were trained with FORK_LAST3=1: no norm0, and
    the backbone is used with ``out_indices=(1, 2, 3)``."""
    detector = {f'backbone.{k}': v for k, v in s12_official.items()
                if not k.startswith(('norm.', 'head.', 'norm0.'))}
    path = save(dict(state_dict=detector), tmp_path)
    model = PoolFormer('s12', out_indices=(1, 2, 3))
    report = model.load_pretrained(path, prefix='backbone.')
    assert report.clean and not report.missing
    assert not hasattr(model, 'norm0')


def test_imagenet_release_reports_dense_norms(s12_official, tmp_path, caplog):
    """The flat ImageNet release has no output norms: they keep their
    initialisation and the report says so; the classifier is ignored."""
    imagenet = {k: v for k, v in s12_official.items()
                if not k.startswith(('norm0', 'norm2', 'norm4', 'norm6'))}
    path = save(imagenet, tmp_path)
    model = PoolFormer('s12')
    report = model.load_pretrained(path)
    assert report.clean
    assert sorted(report.expected_missing) == sorted(
        f'norm{i}.{p}' for i in range(4) for p in ('weight', 'bias'))
    assert torch.equal(model.norm2.weight, torch.ones(320))
    assert 'head.weight' in report.ignored
    assert 'Kept the initialisation of 8 keys' in report.summary()


def test_timm_checkpoint(s12_official, tmp_path):
    timm_sd = {official_to_timm(k): v for k, v in s12_official.items()
               if not k.startswith(('norm0', 'norm2', 'norm4', 'norm6'))}
    assert 'stem.conv.weight' in timm_sd and 'head.fc.weight' in timm_sd
    model = PoolFormer('s12', out_norm=None)
    report = model.load_pretrained(save(timm_sd, tmp_path))
    assert report.key_format == 'timm'
    assert report.clean and not report.unexpected
    assert sorted(report.ignored) == sorted(
        ['head.fc.weight', 'head.fc.bias', 'head.norm.weight',
         'head.norm.bias'])
    official = PoolFormer('s12', out_norm=None)
    official.load_converted(s12_official)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model.eval()(x), official.eval()(x)):
            assert torch.equal(a, b)


def test_unexpected_and_missing_keys_are_reported(s12_official, caplog):
    state_dict = dict(s12_official)
    state_dict['network.0.0.extra.weight'] = torch.zeros(3)
    del state_dict['network.4.5.mlp.fc1.bias']
    model = PoolFormer('s12')
    with caplog.at_level(logging.WARNING, logger='mmengine'):
        report = model.load_converted(state_dict, source='edited')
    assert report.unexpected == ['stages.0.blocks.0.extra.weight']
    assert report.missing == ['stages.2.blocks.5.mlp.fc1.bias']
    assert not report.clean
    assert 'UNEXPECTED 1 keys' in report.summary()
    assert 'MISSING 1 keys' in report.summary()


def test_wrong_arch_is_a_clear_error(s12_official):
    with pytest.raises(ValueError, match='Shape mismatch.*arch'):
        PoolFormer('m36').load_converted(s12_official)


def test_converter_is_a_pure_renaming(s12_official):
    converted, key_format = PoolFormer.convert_checkpoint(s12_official)
    assert key_format == 'official'
    assert len(converted) == len(s12_official)
    assert converted['stem.conv.weight'] is s12_official[
        'patch_embed.proj.weight']
    assert converted['stages.3.downsample.conv.bias'] is s12_official[
        'network.5.proj.bias']
    assert converted['stages.2.blocks.5.layer_scale2.scale'] is s12_official[
        'network.4.5.layer_scale_2']
    assert converted['norm3.weight'] is s12_official['norm6.weight']
    assert 'head.weight' in converted


def test_checkpoint_files_are_read_weights_only(tmp_path):
    class NotAWeight:
        def __reduce__(self):
            return (print, ('executed',))

    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'x': NotAWeight()}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint_file(str(path))


def test_bad_init_cfg():
    model = PoolFormer(
        's12', init_cfg=dict(type='Pretrained', checkpoint='x', strict=True))
    with pytest.raises(ValueError, match='strict'):
        model.init_weights()


@pytest.mark.parametrize('size', [(224, 224), (200, 300), (97, 131), (32, 32),
                                  (416, 608)])
def test_official_output_sizes(size):
    """Stem ``floor((H + 4 - 7) / 4) + 1``, then ``ceil(h / 2)`` per stage."""
    model = PoolFormer(dict(embed_dims=[8, 8, 8, 8], depths=[1, 1, 1, 1]))
    with torch.no_grad():
        outs = model.eval()(torch.zeros(1, 3, *size))
    expected = [(s + 4 - 7) // 4 + 1 for s in size]
    for out in outs:
        assert tuple(out.shape[2:]) == tuple(expected)
        expected = [math.ceil(s / 2) for s in expected]


def test_layer_scale_override_and_arch_values():
    assert PoolFormer('s36').arch['layer_scale_init_value'] == 1e-6
    model = PoolFormer('s12', layer_scale_init_value=0.5)
    assert torch.all(model.stages[0].blocks[0].layer_scale1.scale == 0.5)
    n_params = sum(p.numel() for p in PoolFormer('s12').parameters())
    assert n_params == 11_403_200  # the official dense backbone's count


@pytest.mark.parametrize('arch, count', [
    ('s12', 11_403_200), ('s24', 20_876_992), ('s36', 30_350_784),
    ('m36', 55_404_864), ('m48', 72_705_792)])
def test_parameter_counts_of_the_official_dense_backbones(arch, count):
    """shared/spec/poolformer.md: parameters of ``poolformer_*_feat``."""
    assert sum(p.numel() for p in PoolFormer(arch).parameters()) == count
