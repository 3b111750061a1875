"""mmmetaformer.checkpoint.report: the message of a refused load names the
family and arch a checkpoint of another model is of, whatever its file
format, and never calls a model's own file of another arch another
family."""
import pytest
import torch

from mmmetaformer.models.backbones import PoolFormer
from tests.test_checkpoint.files import safetensors_bytes, save, tiny


@pytest.mark.parametrize('family', ['ResMLP', 'PiT', 'PoolFormer'])
def test_mixer_npz_in_another_family_is_named(mixer_npz, family):
    """It was "a zip archive that is not a torch checkpoint"."""
    with pytest.raises(ValueError) as info:
        tiny(family).load_pretrained(mixer_npz)
    message = str(info.value)
    assert f'{mixer_npz} is an MLPMixer checkpoint (official key names' \
        in message
    assert f'this model is {family}' in message
    assert "Use type='mmmetaformer.MLPMixer'" in message
    assert 'zip archive' not in message


@pytest.mark.parametrize('fmt', ['pth', 'legacy', 'safetensors'])
def test_pit_file_in_poolformer_is_named(tmp_path, fmt):
    state = tiny('PiT').state_dict()
    path = tmp_path / f'pit.{fmt}'
    if fmt == 'safetensors':
        path.write_bytes(safetensors_bytes(state))
    else:
        torch.save(state, path, _use_new_zipfile_serialization=fmt == 'pth')
    with pytest.raises(ValueError) as info:
        tiny('PoolFormer').load_pretrained(str(path))
    message = str(info.value)
    assert 'is a PiT checkpoint (native key names' in message
    assert "this model is PoolFormer. Use type='mmmetaformer.PiT'" in message


def test_own_checkpoint_names_no_other_family(tmp_path):
    """A model's own file of another arch is not called another family;
    a shape mismatch names the arch it is."""
    from mmmetaformer.models.backbones import PiT
    path = save(PiT('xs').state_dict(), tmp_path)
    with pytest.raises(ValueError) as info:
        PiT('ti').load_pretrained(path)
    message = str(info.value)
    assert 'Shape mismatch' in message
    assert "build PiT with arch='xs'" in message


def test_detector_file_of_another_family_without_prefix_is_named(tmp_path):
    """Its backbone is found under 'backbone.' and named."""
    from tests.test_models.test_backbones.tiny_archs import ALL_TINY_ARCHS
    state = {f'backbone.{k}': v for k, v in tiny('ResT').state_dict().items()}
    state['neck.fpn_convs.0.conv.weight'] = torch.zeros(1)
    path = save({'state_dict': state}, tmp_path)
    with pytest.raises(ValueError) as info:
        PoolFormer(**ALL_TINY_ARCHS['PoolFormer']).load_pretrained(path)
    assert (f"{path} (under prefix='backbone.') is a ResT checkpoint "
            "(native key names") in str(info.value)
    assert "this model is PoolFormer. Use type='mmmetaformer.ResT'" \
        in str(info.value)
