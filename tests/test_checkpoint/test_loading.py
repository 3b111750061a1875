"""mmmetaformer.checkpoint.loading: a state_dict loads into a backbone only
when enough of it fits (a checkpoint needing a prefix, a classifier, a
partial load are refused with the way out), never with NaN / Inf."""
import pytest
import torch

from mmmetaformer.checkpoint import load_state_dict_with_report
from mmmetaformer.models.backbones import PoolFormer
from tests.test_checkpoint.files import save
from tests.test_tools import legacy_checkpoints as legacy


# ---------------------------------------------------- loading too little
@pytest.fixture(scope='module')
def s12_dense():
    """The official dense PoolFormer-S12 backbone keys (detection release
    layout: ``patch_embed``, ``network``, ``norm{0,2,4,6}``)."""
    return legacy.official_backbone('poolformer_s12')


def test_detector_checkpoint_without_prefix_names_the_prefix(tmp_path,
                                                               s12_dense):
    """The mmdet file given without prefix='backbone.' used to load 0
    tensors with a warning and train from random weights."""
    full = {f'backbone.{k}': v for k, v in s12_dense.items()}
    full['neck.fpn_convs.0.conv.weight'] = torch.zeros(1)
    path = save({'state_dict': full}, tmp_path)
    model = PoolFormer('s12',
                       init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(ValueError) as info:
        model.init_weights()
    message = str(info.value)
    assert 'only 0 of its' in message
    assert f"'backbone.' ({len(s12_dense)} tensors), 'neck.' (1 tensor)" \
        in message
    assert "prefix='backbone.'" in message
    report = PoolFormer('s12').load_pretrained(path, prefix='backbone.')
    assert report.clean and len(report.loaded) == len(s12_dense)


def test_mmpretrain_classifier_is_recognised(tmp_path, s12_dense):
    """mmpretrain's PoolFormer classifier: official names under backbone.,
    ``norm6`` (out_indices=-1) and ``head.fc``; without the prefix it was
    labelled "(timm key names)" and loaded nothing."""
    state = {f'backbone.{k}': v for k, v in s12_dense.items()
             if not k.startswith(('norm0', 'norm2', 'norm4'))}
    state['head.fc.weight'] = torch.zeros(1000, 512)
    state['head.fc.bias'] = torch.zeros(1000)
    path = save({'state_dict': state, 'meta': {}}, tmp_path)
    with pytest.raises(ValueError) as info:
        PoolFormer('s12').load_pretrained(path)
    message = str(info.value)
    assert 'timm' not in message
    assert 'mmpretrain classifier checkpoint' in message
    assert "prefix='backbone.'" in message
    model = PoolFormer('s12', out_indices=(3, ))
    report = model.load_pretrained(path, prefix='backbone.')
    assert report.key_format == 'official' and report.clean
    # the classifier's final norm (mmpretrain's norm6) is the output norm
    assert torch.equal(model.norm3.weight, s12_dense['norm6.weight'])


def test_less_than_half_loaded_is_an_error(tmp_path, s12_dense):
    model = PoolFormer('s12')
    own = model.state_dict()
    few = dict(list(own.items())[:len(own) // 3])
    with pytest.raises(ValueError, match=r'only \d+ of its \d+ tensors'):
        load_state_dict_with_report(model, few, source='few.pth')
    # 3/4 of the tensors: a partial load, loaded only when asked for
    most = dict(list(own.items())[:len(own) * 3 // 4])
    with pytest.raises(ValueError, match='allow_partial=True'):
        load_state_dict_with_report(model, most, source='most.pth')
    report = load_state_dict_with_report(model, most, source='most.pth',
                                         allow_partial=True)
    assert not report.clean and report.missing


def test_non_finite_tensors_are_an_error(tmp_path):
    model = PoolFormer('s12')
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state['stages.1.blocks.0.mlp.fc1.weight'].fill_(float('nan'))
    state['norm3.bias'][0] = float('inf')
    path = save(state, tmp_path)
    with pytest.raises(ValueError) as info:
        PoolFormer('s12').load_pretrained(path)
    message = str(info.value)
    assert '2 tensors hold NaN or Inf' in message
    assert 'stages.1.blocks.0.mlp.fc1.weight' in message
    assert 'norm3.bias' in message


def test_wrong_prefix_lists_what_is_there(tmp_path, s12_dense):
    path = save({'state_dict': {f'backbone.{k}': v
                                for k, v in s12_dense.items()}}, tmp_path)
    with pytest.raises(ValueError,
                       match=r"No key starts with prefix='model\.'; the "
                       r"checkpoint holds 'backbone\.' \(\d+ tensors\)"):
        PoolFormer('s12').load_pretrained(path, prefix='model.')


# ------------------------------------------------------- partial loads
def _missing_half(model):
    own = model.state_dict()
    return {k: v for i, (k, v) in enumerate(own.items()) if i % 2}


def test_deeper_arch_of_the_family_is_a_refused_partial_load():
    """s24 weights in an s12 model: every s12 tensor fits, 120 s24 keys do
    not; that used to load with a WARNING and training went on."""
    s24 = PoolFormer('s24').state_dict()
    model = PoolFormer('s12')
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as info:
        model.load_converted(s24, source='s24.pth')
    message = str(info.value)
    assert f's24.pth fills {len(before)} of the model' in message
    assert 'are not in the model' in message and 'refused' in message
    assert "build PoolFormer with arch='s24'" in message
    assert 'allow_partial=True' in message and '--allow-partial' in message
    # nothing was copied
    assert all(torch.equal(v, before[k])
               for k, v in model.state_dict().items())
    report = model.load_converted(s24, allow_partial=True)
    assert len(report.unexpected) == 120 and not report.clean


def test_half_the_keys_missing_needs_the_opt_in(tmp_path):
    model = PoolFormer('s12')
    path = save(_missing_half(model), tmp_path)
    cfg = dict(type='Pretrained', checkpoint=path)
    with pytest.raises(ValueError, match='keys are missing from it') as info:
        PoolFormer('s12', init_cfg=cfg).init_weights()
    assert 'Missing: stem.' in str(info.value)
    partial = PoolFormer('s12', init_cfg=dict(cfg, allow_partial=True))
    partial.init_weights()
    loaded = dict(partial.state_dict())
    assert all(torch.equal(loaded[k], v)
               for k, v in _missing_half(model).items())


def test_a_few_differing_keys_still_load_with_a_warning():
    """At most MAX_PARTIAL_FRACTION of the model differs: loaded, reported
    (the threshold is not 'any key')."""
    model = PoolFormer('s12')
    state = dict(model.state_dict())
    del state['stages.3.blocks.0.mlp.fc2.bias']
    state['extra.weight'] = torch.zeros(2)
    report = load_state_dict_with_report(PoolFormer('s12'), state)
    assert report.missing == ['stages.3.blocks.0.mlp.fc2.bias']
    assert report.unexpected == ['extra.weight']


def test_allow_partial_reaches_only_this_packages_backbones():
    """``tools/train.py --allow-partial`` sets the opt-in on the backbone's
    Pretrained init_cfg, not on other modules' (mmengine's Pretrained
    would reject the argument)."""
    from mmmetaformer.launch import allow_partial_pretrained
    model = dict(
        type='RetinaNet',
        backbone=dict(type='mmmetaformer.PoolFormer', arch='s12',
                      init_cfg=dict(type='Pretrained', checkpoint='a.pth')),
        neck=dict(type='FPN', init_cfg=[dict(type='Pretrained',
                                             checkpoint='b.pth')]))
    changes = allow_partial_pretrained(model)
    assert changes == ['mmmetaformer.PoolFormer init_cfg.allow_partial=True '
                       '(--allow-partial)']
    assert model['backbone']['init_cfg']['allow_partial'] is True
    assert 'allow_partial' not in model['neck']['init_cfg'][0]
