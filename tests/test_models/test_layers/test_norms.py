"""GroupNorm1 (channels-last ``GroupNorm(1, C)``): torch's GroupNorm on the
NCHW map, a contiguous channels-last result, the input's dtype under
bfloat16 autocast."""
import pytest
import torch
import torch.nn as nn

from mmmetaformer.models.layers.norms import GroupNorm1


@pytest.mark.parametrize('bias', [True, False])
def test_group_norm1_equals_torch_group_norm(bias):
    torch.manual_seed(0)
    norm = GroupNorm1(6, eps=1e-6, bias=bias).double()
    reference = nn.GroupNorm(1, 6, eps=1e-6, affine=True).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        reference.weight.copy_(norm.weight)
        if bias:
            norm.bias.uniform_(-0.5, 0.5)
            reference.bias.copy_(norm.bias)
        else:
            reference.bias.zero_()
    x = torch.randn(3, 5, 7, 6, dtype=torch.float64)  # (B, H, W, C)
    out = norm(x)
    expected = reference(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert out.is_contiguous()
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_group_norm1_keeps_bfloat16_under_autocast():
    # float32 parameters used to promote the normalised map to float32
    norm = GroupNorm1(8)
    x = torch.randn(1, 4, 5, 8).bfloat16()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert norm(x).dtype == torch.bfloat16
