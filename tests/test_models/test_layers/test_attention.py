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


def test_attention_with_biases_on_a_token_list():
    """PiT's configuration (num_heads given, qkv and proj biases) on
    (B, N, C) tokens equals the same layer on the tokens as a (B, 1, N, C)
    map and an explicit computation with the biases."""
    torch.manual_seed(0)
    dim, heads = 12, 3
    mixer = MultiheadSelfAttention(dim, num_heads=heads).double()
    assert mixer.head_dim == 4 and mixer.qkv.bias is not None
    tokens = torch.randn(2, 7, dim, dtype=torch.float64)
    q, k, v = (tokens @ mixer.qkv.weight.t() + mixer.qkv.bias).reshape(
        2, 7, 3, heads, 4).permute(2, 0, 3, 1, 4)
    attn = torch.softmax(q @ k.transpose(-1, -2) / 2.0, -1)
    expected = (attn @ v).transpose(1, 2).reshape(2, 7, dim)
    expected = expected @ mixer.proj.weight.t() + mixer.proj.bias
    out = mixer(tokens)
    assert out.shape == (2, 7, dim)
    assert torch.allclose(out, expected, atol=1e-12)
    assert torch.equal(mixer(tokens[:, None])[:, 0], out)


@pytest.mark.parametrize('kwargs, message', [
    (dict(), 'exactly one'), (dict(num_heads=2, head_dim=4), 'exactly one'),
    (dict(num_heads=5), 'dividing'), (dict(num_heads=0), 'num_heads')])
def test_attention_head_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiheadSelfAttention(12, **kwargs)
