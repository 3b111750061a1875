"""The convolutional and fixed token mixers (models/layers/mixers.py):
SepConv and RandomMixing against explicit computations."""

import pytest
import torch
import torch.nn.functional as F

from mmmetaformer.models.layers import mixers
from mmmetaformer.models.layers.mixers import RandomMixing, SepConv


def test_sepconv_matches_explicit_computation():
    torch.manual_seed(0)
    mixer = mixers.SepConv(6).double()
    with torch.no_grad():
        mixer.act1.scale.fill_(0.7)
        mixer.act1.bias.fill_(-0.2)
    x = torch.randn(2, 5, 7, 6, dtype=torch.float64)
    h = x @ mixer.pwconv1.weight.t()
    h = 0.7 * torch.relu(h)**2 - 0.2
    h = F.conv2d(h.permute(0, 3, 1, 2), mixer.dwconv.weight, padding=3,
                 groups=12).permute(0, 2, 3, 1)
    expected = h @ mixer.pwconv2.weight.t()
    assert torch.allclose(mixer(x), expected, atol=1e-12)


def windowed_mixing_reference(matrix, x, window):
    """Independent path: the dense (HW x HW) matrix that mixes token p with
    token q by ``R[local(p), local(q)]`` iff both lie in the same window of
    the top-left-anchored tiling (missing tokens of partial windows simply
    do not exist)."""
    B, H, W, C = x.shape
    rows = torch.arange(H).repeat_interleave(W)
    cols = torch.arange(W).repeat(H)
    win = (rows // window) * 10_000 + cols // window
    local = (rows % window) * window + cols % window
    dense = matrix[local[:, None], local[None, :]] * (
        win[:, None] == win[None, :])
    return (dense @ x.reshape(B, H * W, C)).reshape(B, H, W, C)


@pytest.mark.parametrize('window, size', [(7, (7, 7)), (7, (17, 23)),
                                          (7, (3, 5)), (4, (8, 12)),
                                          (14, (14, 14)), (14, (36, 50))])
def test_random_mixing_windows(window, size):
    torch.manual_seed(0)
    mixer = mixers.RandomMixing(window).double()
    with torch.no_grad():  # a signed matrix, as loaded from the reference
        mixer.random_matrix.uniform_(-1, 1)
    x = torch.randn(2, *size, 3, dtype=torch.float64)
    expected = windowed_mixing_reference(mixer.random_matrix, x, window)
    assert torch.allclose(mixer(x), expected, atol=1e-12)


def test_random_mixing_is_the_official_computation_on_one_window():
    """On a window x window map: out[b, m, c] = sum_n R[m, n] y[b, n, c]
    with tokens flattened row-major, over the whole map."""
    torch.manual_seed(0)
    mixer = mixers.RandomMixing(14).double()
    x = torch.randn(2, 14, 14, 5, dtype=torch.float64)
    expected = torch.einsum('mn,bnc->bmc', mixer.random_matrix,
                            x.reshape(2, 196, 5)).reshape(2, 14, 14, 5)
    assert torch.allclose(mixer(x), expected, atol=1e-12)


def test_mixer_argument_errors():
    with pytest.raises(ValueError, match='kernel_size'):
        SepConv(8, kernel_size=4)
    with pytest.raises(ValueError, match='window'):
        RandomMixing(0)


