"""Cycle FC (models/layers/cycle.py) against a deformable convolution
written from its definition, and its shift sign convention."""
import pytest
import torch

from mmmetaformer.models.layers.cycle import CycleFC
from ..test_backbones.test_cyclemlp import official_offset


# --------------------------------------------------------------------------
# An independent deformable convolution, written from its definition
# (Dai et al. 2017): the value at a fractional point p is
#     sum over integer grid points q of the map of
#     max(0, 1 - |q_y - p_y|) * max(0, 1 - |q_x - p_x|) * x[q],
# which is bilinear interpolation with zero outside the map. For a 1x1
# kernel, stride 1 and one offset group per input channel, input channel i
# at output position (y, x) is sampled at (y + off[2i], x + off[2i + 1]).
# --------------------------------------------------------------------------
def bilinear_sample_by_definition(x, py, px):
    """x (B, C, H, W); py, px (B, C, Ho, Wo) sampling points."""
    height, width = x.shape[-2:]
    qy = torch.arange(height, dtype=x.dtype)
    qx = torch.arange(width, dtype=x.dtype)
    ky = (1 - (qy - py[..., None]).abs()).clamp(min=0)  # B, C, Ho, Wo, H
    kx = (1 - (qx - px[..., None]).abs()).clamp(min=0)  # B, C, Ho, Wo, W
    return torch.einsum('bcyxq,bcyxr,bcqr->bcyx', ky, kx, x)


def deform_conv_1x1_by_definition(x, offset, weight, bias):
    """x (B, C, H, W), offset (B, 2C, H, W), weight (O, C, 1, 1)."""
    batch, channels, height, width = x.shape
    ys = torch.arange(height, dtype=x.dtype).view(1, 1, height, 1)
    xs = torch.arange(width, dtype=x.dtype).view(1, 1, 1, width)
    py = ys + offset[:, 0::2]
    px = xs + offset[:, 1::2]
    sampled = bilinear_sample_by_definition(x, py, px)
    out = torch.einsum('oc,bcyx->boyx', weight[:, :, 0, 0], sampled)
    return out + bias.view(1, -1, 1, 1)


def test_definition_reference_itself():
    """The reference above gives bilinear values at fractional points and
    zeros outside, so the exactness test below compares with a real
    deformable convolution."""
    x = torch.arange(12, dtype=torch.float64).view(1, 1, 3, 4) + 1
    py = torch.tensor([[[[0.0, 1.0, -1.0, 2.5]]]], dtype=torch.float64)
    px = torch.tensor([[[[0.5, 3.0, 0.0, 1.0]]]], dtype=torch.float64)
    got = bilinear_sample_by_definition(x, py, px)[0, 0, 0]
    # (0, 0.5): mean of x[0, 0] and x[0, 1]; (1, 3): x[1, 3]; row -1: zero;
    # (2.5, 1): half of x[2, 1] (row 3 is outside the map)
    expected = torch.tensor([1.5, 8.0, 0.0, 0.5 * 10.0], dtype=torch.float64)
    assert torch.equal(got, expected)


@pytest.mark.parametrize('kernel_size', [(1, 3), (3, 1), (1, 5), (5, 1)])
@pytest.mark.parametrize('size', [(7, 9), (5, 11), (1, 6), (4, 1)])
def test_cycle_fc_equals_deformable_conv(kernel_size, size):
    """Cycle FC as shift + projection equals the official formulation, a
    1x1 deformable convolution with the official offsets, in float64."""
    torch.manual_seed(0)
    in_channels, out_channels = 7, 5
    fc = CycleFC(in_channels, out_channels, kernel_size).double()
    with torch.no_grad():
        fc.bias.normal_()
    expected_offset = official_offset(in_channels, kernel_size)
    assert torch.equal(fc.offset.double(), expected_offset)
    x = torch.randn(2, in_channels, *size, dtype=torch.float64)
    offset = expected_offset.expand(2, -1, *size)
    expected = deform_conv_1x1_by_definition(
        x, offset, fc.weight.view(out_channels, in_channels, 1, 1), fc.bias)
    with torch.no_grad():
        got = fc(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-13


def test_cycle_fc_sign_convention():
    """With dx = +1 (channel 1 of a (1, 3) Cycle FC) the output at column x
    reads column x + 1 and the last column reads zero; with dy = -1
    (channel 2 of a (3, 1) Cycle FC) row y reads row y - 1."""
    x = torch.arange(2 * 3 * 4 * 3, dtype=torch.float64).view(2, 3, 4, 3)
    for kernel_size in [(1, 3), (3, 1)]:
        fc = CycleFC(3, 3, kernel_size).double()
        with torch.no_grad():
            fc.weight.copy_(torch.eye(3))
            fc.bias.zero_()
            out = fc(x)
        assert torch.equal(out[..., 0], x[..., 0])
        if kernel_size == (1, 3):
            assert torch.equal(out[:, :, :-1, 1], x[:, :, 1:, 1])
            assert torch.all(out[:, :, -1, 1] == 0)
            assert torch.equal(out[:, :, 1:, 2], x[:, :, :-1, 2])
        else:
            assert torch.equal(out[:, :-1, :, 1], x[:, 1:, :, 1])
            assert torch.equal(out[:, 1:, :, 2], x[:, :-1, :, 2])
            assert torch.all(out[:, 0, :, 2] == 0)
