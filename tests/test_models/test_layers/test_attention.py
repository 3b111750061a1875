"""MultiheadSelfAttention (models/layers/attention.py) in CAFormer's
configuration against an explicit computation."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmmetaformer.models.layers import attention
from mmmetaformer.models.layers.attention import MultiheadSelfAttention


def test_attention_matches_explicit_computation(monkeypatch):
    """CAFormer's configuration (head_dim given, no biases): qkv channels
    are ordered (q/k/v, head, d); softmax(q k^T / sqrt(d)) v per head; the
    fused SDPA kernel is what computes it."""
    torch.manual_seed(0)
    dim, head_dim, heads = 12, 4, 3
    mixer = MultiheadSelfAttention(dim, head_dim=head_dim, qkv_bias=False,
                                   proj_bias=False).double()
    x = torch.randn(2, 3, 5, dim, dtype=torch.float64)
    tokens = x.reshape(2, 15, dim)
    w = mixer.qkv.weight
    head_outs = []
    for h in range(heads):
        rows = [s * heads * head_dim + h * head_dim + torch.arange(head_dim)
                for s in range(3)]
        q, k, v = (tokens @ w[r].t() for r in rows)
        attn = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(head_dim), -1)
        head_outs.append(attn @ v)
    expected = (torch.cat(head_outs, -1) @ mixer.proj.weight.t()).reshape(
        2, 3, 5, dim)
    calls = []
    original = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(attention.F, 'scaled_dot_product_attention', counting)
    assert torch.allclose(mixer(x), expected, atol=1e-12)
    assert calls == [torch.Size([2, heads, 15, head_dim])]


def test_attention_argument_errors():
    with pytest.raises(ValueError, match='head_dim'):
        MultiheadSelfAttention(8, head_dim=-1)
