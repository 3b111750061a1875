"""ResT's token mixer: efficient multi-head self-attention (EMSA).

Keys and values come from a map reduced by a strided depthwise convolution;
ResT v1 adds a head-interaction convolution and an InstanceNorm of each
head's attention map, ResTV2 an upsampling branch of the values. See
:mod:`mmmetaformer.models.backbones.rest` for the differences from the
official code (any input size here).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .fastpath import autocast_disabled


def instance_norm_attention(attn: torch.Tensor,
                            eps: float = 1e-5) -> torch.Tensor:
    """``InstanceNorm2d`` (no affine, input statistics) of each head's
    N x N' attention map.

    A constant map (which includes every 1x1 map, where ``nn.InstanceNorm2d``
    raises) has variance 0 and normalises to zeros.
    """
    if attn.shape[-1] * attn.shape[-2] > 1:
        return F.instance_norm(attn, eps=eps)
    return torch.zeros_like(attn)


class EMSA(nn.Module):
    """ResT's efficient multi-head self-attention on channels-last tokens.

    ``q`` comes from every token; keys and values from the map reduced by
    ``sr`` (depthwise conv, kernel ``sr + 1``, stride ``sr``, padding
    ``sr // 2``) and ``sr_norm`` when ``sr_ratio > 1``. ``kv`` channels are
    ordered (k/v, head, head_dim).

    Args:
        dim (int): Channels.
        num_heads (int): Attention heads; must divide ``dim``.
        sr_ratio (int): Spatial reduction of keys/values (1 = none).
        head_transform (bool): ResT v1 (used when ``num_heads > 1``): mix the
            heads' logits with a 1x1 conv (``transform_conv``), softmax, then
            normalise each head's attention map (InstanceNorm, eps 1e-5).
        upsample (bool): ResTV2: add ``up_norm(PixelShuffle(up(v)))``, the
            values mapped back to the query resolution, to the attention
            output before ``proj``.
        norm_eps (float): Epsilon of ``sr_norm`` and ``up_norm``.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 sr_ratio: int,
                 head_transform: bool = False,
                 upsample: bool = False,
                 norm_eps: float = 1e-5) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'num_heads ({num_heads}) must divide the '
                             f'channels ({dim}).')
        if sr_ratio < 1:
            raise ValueError(f'sr_ratio must be >= 1, got {sr_ratio}.')
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.sr_ratio = sr_ratio
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio + 1, stride=sr_ratio,
                                padding=sr_ratio // 2, groups=dim)
            self.sr_norm = nn.LayerNorm(dim, eps=norm_eps)
        self.head_transform = head_transform and num_heads > 1
        if self.head_transform:
            self.transform_conv = nn.Conv2d(num_heads, num_heads, 1)
        self.upsample = upsample
        if upsample:
            self.up = nn.Sequential(
                nn.Conv2d(dim, sr_ratio * sr_ratio * dim, 3, padding=1,
                          groups=dim), nn.PixelShuffle(sr_ratio))
            self.up_norm = nn.LayerNorm(dim, eps=norm_eps)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        heads, d = self.num_heads, self.head_dim
        q = self.q(x).reshape(B, H * W, heads, d).transpose(1, 2)
        if self.sr_ratio > 1:
            y = self.sr(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
            y = self.sr_norm(y)
        else:
            y = x
        h, w = y.shape[1:3]
        kv = self.kv(y)  # (B, h, w, 2C): channel = s * C + head * d + i
        k, v = kv.reshape(B, h * w, 2, heads, d).permute(2, 0, 3, 1, 4)
        if self.head_transform:
            out = self._transformed_attention(q, k, v)
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(B, H, W, C)
        if self.upsample:
            # v as an NCHW map (channel = head * d + i); channels-last memory
            v_map = kv[..., C:].permute(0, 3, 1, 2)
            up = self.up(v_map)[:, :, :H, :W]
            out = out + self.up_norm(up.permute(0, 2, 3, 1))
        return self.proj(out)

    def _transformed_attention(self, q: torch.Tensor, k: torch.Tensor,
                               v: torch.Tensor) -> torch.Tensor:
        """ResT v1's attention: logits, head mixing, softmax, InstanceNorm of
        each head's map, then the values.

        Computed in at least float32 whatever the autocast state: the
        InstanceNorm divides by the spread of nearly uniform softmax values,
        which bfloat16's 8-bit mantissa resolves poorly (in bfloat16 the
        softmax and the norm were this mixer's largest rounding errors, up to
        4x those of its projections). The maps are small (keys are spatially
        reduced), so this costs little. The result is returned in ``q``'s
        dtype.
        """
        dtype = torch.promote_types(q.dtype, torch.float32)
        with autocast_disabled(q.device.type):
            attn = (q.to(dtype) @ k.to(dtype).transpose(-2, -1)) * self.scale
            attn = F.conv2d(attn, self.transform_conv.weight.to(dtype),
                            self.transform_conv.bias.to(dtype))
            attn = instance_norm_attention(attn.softmax(dim=-1))
            out = attn @ v.to(dtype)
        return out.to(q.dtype)

    def extra_repr(self) -> str:
        return (f'dim={self.dim}, num_heads={self.num_heads}, '
                f'sr_ratio={self.sr_ratio}, '
                f'head_transform={self.head_transform}, '
                f'upsample={self.upsample}')
