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


@pytest.mark.parametrize('pool_size', [3, 5])
@pytest.mark.parametrize('shape', [(2, 3, 7, 9), (1, 4, 2, 5), (1, 2, 1, 1)])
def test_neighbour_mean_gradient_is_that_of_avg_pool(pool_size, shape):
    """The sum-pooling gradient equals autograd's gradient of
    ``avg_pool2d(..., count_include_pad=False)`` (and passes gradcheck),
    borders and channels-last inputs included."""
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64).to(
        memory_format=torch.channels_last).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t: mixers._NeighbourMean.apply(t, pool_size), (x, ))
    grad = torch.randn(*shape, dtype=torch.float64)
    out = mixers._NeighbourMean.apply(x, pool_size)
    expected = F.avg_pool2d(x, pool_size, 1, pool_size // 2,
                            count_include_pad=False)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    got = torch.autograd.grad(out, x, grad)[0]
    want = torch.autograd.grad(expected, x, grad)[0]
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_neighbour_mean_bfloat16_gradient_is_rounded_once():
    torch.manual_seed(0)
    x = torch.randn(1, 16, 12, 10).bfloat16().requires_grad_()
    grad = torch.randn(1, 16, 12, 10).bfloat16()
    got = torch.autograd.grad(mixers.neighbour_mean(x, 3), x, grad)[0]
    leaf = x.detach().double().requires_grad_()
    exact = torch.autograd.grad(
        F.avg_pool2d(leaf, 3, 1, 1, count_include_pad=False), leaf,
        grad.double())[0]
    assert got.dtype == torch.bfloat16
    # one rounding of the float32 result to bfloat16: within 2^-8 each
    torch.testing.assert_close(got.double(), exact, rtol=2**-8, atol=1e-6)


def test_neighbour_mean_takes_the_sum_pooling_gradient_in_bfloat16_only():
    x = torch.randn(1, 2, 5, 6, requires_grad=True)
    assert 'NeighbourMean' not in type(
        mixers.neighbour_mean(x, 3).grad_fn).__name__
    y = mixers.neighbour_mean(x.bfloat16(), 3)
    assert 'NeighbourMean' in type(y.grad_fn).__name__
    with torch.no_grad():
        assert mixers.neighbour_mean(x.bfloat16(), 3).grad_fn is None


def test_neighbour_mean_is_plain_avg_pool_while_tracing():
    x = torch.randn(1, 2, 5, 6).bfloat16().requires_grad_()
    traced = torch.jit.trace(lambda t: mixers.neighbour_mean(t, 3), (x, ))
    assert 'avg_pool2d' in str(traced.graph)
    assert 'PythonOp' not in str(traced.graph)
