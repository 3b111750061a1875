"""Windowed token mixing (MLP-Mixer / ResMLP) and ResMLP's Affine against
independent computations."""
import pytest
import torch

from mmmetaformer.models.layers import Affine, WindowTokenMixing
from mmmetaformer.models.layers.token_mixing import mix_in_windows


def windowed_by_loops(mixer, x):
    """Per window: zero-fill the missing tokens, mix each channel's
    row-major token vector, keep the valid part."""
    B, H, W, C = x.shape
    s = mixer.window
    out = torch.zeros_like(x)
    for top in range(0, H, s):
        for left in range(0, W, s):
            window = torch.zeros(B, s, s, C, dtype=x.dtype)
            part = x[:, top:top + s, left:left + s]
            h, w = part.shape[1:3]
            window[:, :h, :w] = part
            mixed = mixer.mix(window.reshape(B, s * s, C).transpose(1, 2))
            mixed = mixed.transpose(1, 2).reshape(B, s, s, C)
            out[:, top:top + s, left:left + s] = mixed[:, :h, :w]
    return out


@pytest.mark.parametrize('hidden', [None, 6])
@pytest.mark.parametrize('size', [(4, 4), (13, 19), (3, 9), (8, 5)])
def test_window_token_mixing_against_loops(hidden, size):
    torch.manual_seed(0)
    mixer = WindowTokenMixing(4, hidden).double()
    x = torch.randn(2, *size, 5, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(mixer(x), windowed_by_loops(mixer, x),
                              atol=1e-12)


def test_one_window_is_the_plain_token_mixing():
    """On exactly one window: ``mix`` over the row-major token axis of each
    channel, the official (B, C, N) formulation."""
    torch.manual_seed(0)
    mixer = WindowTokenMixing(3).double()
    x = torch.randn(2, 3, 3, 4, dtype=torch.float64)
    tokens = x.reshape(2, 9, 4).transpose(1, 2)  # (B, C, N)
    expected = mixer.mix(tokens).transpose(1, 2).reshape(2, 3, 3, 4)
    assert torch.equal(mixer(x), expected)


def test_mix_in_windows_identity_and_errors():
    x = torch.randn(1, 7, 5, 3)
    assert torch.equal(mix_in_windows(x, 4, lambda t: t), x)
    with pytest.raises(ValueError, match='window'):
        WindowTokenMixing(0)


def test_affine():
    norm = Affine(3)
    with torch.no_grad():
        norm.alpha.copy_(torch.tensor([1.0, 2.0, 3.0]))
        norm.beta.copy_(torch.tensor([0.5, 0.0, -1.0]))
    x = torch.ones(2, 3)
    assert torch.equal(norm(x), torch.tensor([[1.5, 2.0, 2.0]] * 2))
