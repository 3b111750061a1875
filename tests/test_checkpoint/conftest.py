"""Fixtures shared by the checkpoint tests."""
import pytest
import torch

from tests.test_checkpoint.files import flax_mixer_npz, tiny


@pytest.fixture
def mixer_npz(tmp_path):
    """A tiny MLPMixer's weights as an official Flax ``.npz`` file."""
    mixer = tiny('MLPMixer')
    path = flax_mixer_npz(mixer, tmp_path / 'Mixer-T.npz')
    # the file is a valid MLP-Mixer checkpoint
    other = tiny('MLPMixer')
    other.load_state_dict({k: torch.zeros_like(v)
                           for k, v in other.state_dict().items()})
    report = other.load_pretrained(path)
    assert report.key_format == 'official' and report.clean
    assert all(torch.equal(other.state_dict()[k], v)
               for k, v in mixer.state_dict().items()
               if not k.startswith('pyramid.'))
    return path
