"""The fast paths of layers/fastpath.py: each computes what the plain
PyTorch op computes (values and gradients), runs only where the rule
allows it, and the plain op runs everywhere else."""
from unittest import mock

import pytest
import torch
import torch.nn.functional as F

from mmmetaformer.models.layers import fastpath
from mmmetaformer.models.layers.fastpath import (channel_linear,
                                                 depthwise_conv2d,
                                                 grad_needed)
from mmmetaformer.models.layers.mixers import SepConv

_ACTS = {'relu': F.relu, 'gelu': F.gelu,
         'gelu_tanh': lambda t: F.gelu(t, approximate='tanh')}


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('shape', [(2, 5, 7, 6), (3, 6)])
def test_channel_linear_equals_linear(dtype, shape):
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=dtype)
    weight = torch.randn(4, 6, dtype=dtype)
    bias = torch.randn(4, dtype=dtype)
    out = channel_linear(x, weight, bias)
    expected = x @ weight.t() + bias
    assert out.shape == expected.shape and out.is_contiguous()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out, expected, rtol=tol, atol=tol)


def test_channel_linear_non_contiguous_input():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 5, 7).permute(0, 2, 3, 1)  # not contiguous
    weight = torch.randn(4, 6)
    torch.testing.assert_close(channel_linear(x, weight), x @ weight.t(),
                               rtol=1e-5, atol=1e-5)


def test_grad_needed():
    x = torch.randn(3, requires_grad=True)
    assert grad_needed(x) and not grad_needed(x.detach())
    with torch.no_grad():
        assert not grad_needed(x)


@pytest.mark.parametrize('activation', [None, 'relu', 'gelu', 'gelu_tanh'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_channel_linear_activation(activation, dtype):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 7, 6, dtype=dtype)  # the 1x1-conv path in fp32
    weight, bias = torch.randn(4, 6, dtype=dtype), torch.randn(4, dtype=dtype)
    expected = x @ weight.t() + bias
    if activation is not None:
        expected = _ACTS[activation](expected)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for grad in (False, True):  # in place without gradients
        with torch.set_grad_enabled(grad):
            out = channel_linear(x, weight, bias, activation)
        torch.testing.assert_close(out, expected, rtol=tol, atol=tol)


def test_channel_linear_rejects_unknown_activation():
    with pytest.raises(ValueError, match="'swish'.*'gelu'"):
        channel_linear(torch.randn(2, 3), torch.randn(4, 3), None, 'swish')


def test_fused_bf16_path_is_taken_only_for_cpu_autocast_inference():
    x, weight = torch.randn(2, 3, 3, 4), torch.nn.Parameter(torch.randn(5, 4))
    fused = fastpath._fused_bf16_inference
    assert not fused(x, weight)  # no autocast
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert not fused(x, weight)  # autograd needs the weight
        with torch.no_grad():
            assert fused(x, weight) == fastpath._onednn_bf16_linear()
            with mock.patch.object(torch.jit, 'is_tracing', lambda: True):
                assert not fused(x, weight)
        with torch.autocast('cpu', dtype=torch.float16), torch.no_grad():
            assert not fused(x, weight)


def test_float64_stays_float64_under_bf16_autocast():
    """Autocast leaves float64 operands alone; the fused bf16 route used to
    round them to bfloat16."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 3, 6, dtype=torch.float64)
    weight = torch.randn(4, 6, dtype=torch.float64)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = channel_linear(x, weight, None, 'relu')
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, F.relu(x @ weight.t()), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.skipif(not fastpath._onednn_bf16_linear(),
                    reason="oneDNN's bfloat16 linear is not available")
@pytest.mark.parametrize('activation', [None, 'relu', 'gelu', 'gelu_tanh'])
def test_fused_bf16_linear_rounds_the_activation_once(activation):
    """oneDNN's fused linear applies bias and activation to the float32
    accumulator of the bfloat16 operands and rounds once."""
    torch.manual_seed(0)
    x = torch.randn(2, 9, 11, 32)
    weight, bias = torch.randn(48, 32), torch.randn(48)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = channel_linear(x, weight, bias, activation)
    assert out.dtype == torch.bfloat16 and out.shape == (2, 9, 11, 48)
    rounded = [t.bfloat16().double() for t in (x, weight, bias)]
    exact = rounded[0] @ rounded[1].t() + rounded[2]
    if activation is not None:
        exact = _ACTS[activation](exact)
    # one rounding to bfloat16 (2^-9 relative) plus float32 accumulation
    torch.testing.assert_close(out.double(), exact, rtol=2**-8, atol=1e-5)


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
        lambda t: fastpath._NeighbourMean.apply(t, pool_size), (x, ))
    grad = torch.randn(*shape, dtype=torch.float64)
    out = fastpath._NeighbourMean.apply(x, pool_size)
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
    got = torch.autograd.grad(fastpath.neighbour_mean(x, 3), x, grad)[0]
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
        fastpath.neighbour_mean(x, 3).grad_fn).__name__
    y = fastpath.neighbour_mean(x.bfloat16(), 3)
    assert 'NeighbourMean' in type(y.grad_fn).__name__
    with torch.no_grad():
        assert fastpath.neighbour_mean(x.bfloat16(), 3).grad_fn is None


def test_neighbour_mean_is_plain_avg_pool_while_tracing():
    x = torch.randn(1, 2, 5, 6).bfloat16().requires_grad_()
    traced = torch.jit.trace(lambda t: fastpath.neighbour_mean(t, 3), (x, ))
    assert 'avg_pool2d' in str(traced.graph)
    assert 'PythonOp' not in str(traced.graph)


_depthwise = fastpath._DepthwiseConv2d.apply


@pytest.mark.parametrize('batch,kernel', [(1, 7), (3, 3), (2, 7)])
@pytest.mark.parametrize('channels_last', [True, False])
def test_depthwise_gradients_equal_conv2d(batch, kernel, channels_last):
    """:class:`_DepthwiseConv2d` (float64 for gradcheck: called directly,
    the rule takes it in float32 / bfloat16 only)."""
    torch.manual_seed(0)
    x = torch.randn(batch, 5, 9, 11, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    weight = torch.randn(5, 1, kernel, kernel, dtype=torch.float64,
                         requires_grad=True)
    out = _depthwise(x, weight, kernel // 2)
    expected = F.conv2d(x, weight, padding=kernel // 2, groups=5)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(expected)
    got = torch.autograd.grad(out, [x, weight], grad)
    want = torch.autograd.grad(expected, [x, weight], grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(
        lambda a, b: _depthwise(a, b, kernel // 2), (x, weight))


def test_depthwise_weight_gradient_only():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 7, dtype=torch.float64)
    weight = torch.randn(4, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    (grad, ) = torch.autograd.grad(_depthwise(x, weight, 1).sum(),
                                   weight)
    (want, ) = torch.autograd.grad(
        F.conv2d(x, weight, padding=1, groups=4).sum(), weight)
    torch.testing.assert_close(grad, want, rtol=1e-12, atol=1e-12)


def test_sepconv_under_bfloat16_autocast_trains_in_float32_parameters():
    torch.manual_seed(0)
    mixer = SepConv(16)
    x = torch.randn(2, 9, 10, 16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = mixer(x)
    out.float().square().sum().backward()
    grad_bf16 = mixer.dwconv.weight.grad.clone()
    assert out.dtype == torch.bfloat16
    assert grad_bf16.dtype == torch.float32
    mixer.zero_grad()
    mixer(x).square().sum().backward()
    grad_fp32 = mixer.dwconv.weight.grad
    assert ((grad_bf16 - grad_fp32).norm() / grad_fp32.norm()) < 3e-2


def _grad_fn_names(out):
    """The class names of every node of ``out``'s autograd graph."""
    names, stack, seen = set(), [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(n for n, _ in node.next_functions)
    return names


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16,
                                   torch.float16, torch.float64])
def test_depthwise_takes_its_gradient_where_measured(dtype):
    """CPU float32 / bfloat16 (autocast included) with a weight gradient:
    the custom function; float16, float64, no weight gradient: the plain
    convolution (the values are the same)."""
    x = torch.randn(1, 3, 6, 5)
    weight = torch.randn(3, 1, 3, 3, requires_grad=True)
    measured = dtype in (torch.float32, torch.bfloat16)
    for autocast in (False, True):
        if autocast and dtype in (torch.float32, torch.float64):
            continue
        with torch.autocast('cpu', dtype=dtype, enabled=autocast):
            inputs = (x, weight) if autocast else (x.to(dtype),
                                                   weight.to(dtype))
            out = depthwise_conv2d(*inputs, 1)
        assert out.dtype == dtype
        custom = any('DepthwiseConv2d' in n for n in _grad_fn_names(out))
        assert custom == measured, (dtype, autocast)
        torch.testing.assert_close(
            out.double(), F.conv2d(x.double(), weight.double(), padding=1,
                                   groups=3), rtol=2e-2, atol=2e-2)
    assert depthwise_conv2d(x, weight.detach(), 1).grad_fn is None


def test_neighbour_mean_takes_its_gradient_in_bfloat16_only():
    """float16 was never measured: PyTorch's own gradient."""
    x = torch.randn(1, 2, 5, 6, requires_grad=True)
    for dtype, custom in ((torch.bfloat16, True), (torch.float16, False),
                          (torch.float32, False)):
        names = _grad_fn_names(fastpath.neighbour_mean(x.to(dtype), 3))
        assert any('NeighbourMean' in n for n in names) == custom, dtype
