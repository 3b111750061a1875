"""``mixers.depthwise_conv2d``: the depthwise convolution of SepConv with its
own weight gradient (a depthwise convolution of the padded input with the
output gradient as kernel): values and gradients of ``F.conv2d``."""
import pytest
import torch
import torch.nn.functional as F

from mmmetaformer.models.layers.mixers import SepConv, depthwise_conv2d


@pytest.mark.parametrize('batch,kernel', [(1, 7), (3, 3), (2, 7)])
@pytest.mark.parametrize('channels_last', [True, False])
def test_values_and_gradients_equal_conv2d(batch, kernel, channels_last):
    torch.manual_seed(0)
    x = torch.randn(batch, 5, 9, 11, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    weight = torch.randn(5, 1, kernel, kernel, dtype=torch.float64,
                         requires_grad=True)
    out = depthwise_conv2d(x, weight, kernel // 2)
    expected = F.conv2d(x, weight, padding=kernel // 2, groups=5)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(expected)
    got = torch.autograd.grad(out, [x, weight], grad)
    want = torch.autograd.grad(expected, [x, weight], grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(
        lambda a, b: depthwise_conv2d(a, b, kernel // 2), (x, weight))


def test_weight_gradient_only():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 7, dtype=torch.float64)
    weight = torch.randn(4, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    (grad, ) = torch.autograd.grad(depthwise_conv2d(x, weight, 1).sum(),
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
