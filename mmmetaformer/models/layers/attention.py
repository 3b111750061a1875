"""Multi-head self-attention over any number of token axes."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .fastpath import channel_linear


class MultiheadSelfAttention(nn.Module):
    """ViT-style multi-head self-attention on channels-last tokens.

    The input is (B, ..., C): all axes between the batch and the channels
    are flattened into one token sequence (row-major), so the same module
    serves token lists (B, N, C) and maps (B, H, W, C). ``qkv`` produces
    channels ordered (q/k/v, head, d), as the official ViT/DeiT/PiT and
    MetaFormer (CAFormer) ``Attention``; each head computes
    ``softmax(q k^T / sqrt(head_dim)) v`` with
    :func:`torch.nn.functional.scaled_dot_product_attention` (a fused
    kernel where one exists), then ``proj`` maps the concatenated heads
    (``inner = num_heads * head_dim`` channels) back to ``dim``. Both
    projections go through :func:`~.fastpath.channel_linear`.

    Args:
        dim (int): Channels C.
        num_heads (int, optional): Number of heads; ``head_dim = dim //
            num_heads`` (must divide). Give exactly one of ``num_heads`` and
            ``head_dim``.
        head_dim (int, optional): Channels per head; ``num_heads =
            max(dim // head_dim, 1)`` (CAFormer's rule; ``inner`` may then
            differ from ``dim``).
        qkv_bias (bool): Whether ``qkv`` has a bias. Defaults to True.
        proj_bias (bool): Whether ``proj`` has a bias. Defaults to True.
    """

    def __init__(self,
                 dim: int,
                 num_heads: Optional[int] = None,
                 head_dim: Optional[int] = None,
                 qkv_bias: bool = True,
                 proj_bias: bool = True) -> None:
        super().__init__()
        if (num_heads is None) == (head_dim is None):
            raise ValueError(
                'Give exactly one of num_heads and head_dim, got '
                f'num_heads={num_heads!r}, head_dim={head_dim!r}.')
        if num_heads is not None:
            if (not isinstance(num_heads, int) or num_heads < 1
                    or dim % num_heads):
                raise ValueError(f'num_heads must be a positive int dividing '
                                 f'dim ({dim}), got {num_heads!r}.')
            head_dim = dim // num_heads
        else:
            if not isinstance(head_dim, int) or head_dim < 1:
                raise ValueError(
                    f'head_dim must be a positive int, got {head_dim!r}.')
            num_heads = max(dim // head_dim, 1)
        self.num_heads = num_heads
        self.head_dim = head_dim
        inner = num_heads * head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        self.proj = nn.Linear(inner, dim, bias=proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        # explicit sizes (not -1): a batch of 0 has no size to infer
        B, N = shape[0], 1
        for size in shape[1:-1]:
            N = N * size
        # projected before flattening: a (B, H, W, C) map takes the 1x1
        # convolution route of channel_linear
        qkv = channel_linear(x, self.qkv.weight, self.qkv.bias).reshape(
            B, N, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, d)
        x = x.transpose(1, 2).reshape(*shape[:-1],
                                      self.num_heads * self.head_dim)
        return channel_linear(x, self.proj.weight, self.proj.bias)

    def extra_repr(self) -> str:
        return f'num_heads={self.num_heads}, head_dim={self.head_dim}'
