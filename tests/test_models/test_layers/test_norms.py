"""GroupNorm1 (channels-last ``GroupNorm(1, C)``): torch's GroupNorm on the
NCHW map, a contiguous channels-last result, the input's dtype under
bfloat16 autocast."""
import itertools

import pytest
import torch
import torch.nn as nn

from mmmetaformer.models.layers.norms import GroupNorm1
from tests.crash_guard import run_guarded


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


def check_every_requires_grad_combination():
    """Outputs and gradients of GroupNorm1 equal torch's GroupNorm on a
    contiguous NCHW copy (a kernel path without the bug) for every
    combination of input / weight / bias ``requires_grad``."""
    for x_grad, w_grad, b_grad in itertools.product([False, True], repeat=3):
        torch.manual_seed(0)
        norm = GroupNorm1(6).double()
        reference = nn.GroupNorm(1, 6).double()
        with torch.no_grad():
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
            reference.load_state_dict(norm.state_dict())
        for module in (norm, reference):
            module.weight.requires_grad_(w_grad)
            module.bias.requires_grad_(b_grad)
        x = torch.randn(2, 5, 7, 6, dtype=torch.float64)  # (B, H, W, C)
        ref_x = x.permute(0, 3, 1, 2).contiguous().requires_grad_(x_grad)
        x.requires_grad_(x_grad)
        out = norm(x)
        expected = reference(ref_x).permute(0, 2, 3, 1)
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
        assert out.is_contiguous()
        if not out.requires_grad:
            continue
        grad = torch.randn_like(out)
        out.backward(grad)
        expected.backward(grad)
        pairs = [(x.grad.permute(0, 3, 1, 2), ref_x.grad)] if x_grad else []
        pairs += [(p.grad, q.grad) for p, q in zip(norm.parameters(),
                                                    reference.parameters())
                  if p.requires_grad]
        for got, want in pairs:
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_every_requires_grad_combination_trains_without_crashing():
    """An input without gradient and an affine with one (the block after a
    frozen stem) used to die with SIGSEGV in PyTorch's CPU backward."""
    run_guarded(f'{__name__}:check_every_requires_grad_combination')
