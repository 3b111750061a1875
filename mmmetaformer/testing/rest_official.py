"""A straightforward re-implementation of the official ResT / ResTv2 dense
backbones, written from ``shared/spec/rest.md``, for tests and benchmarks.

It follows the official formulation literally: tokens (B, N, C) with the
spatial size tracked by hand as the official code does (``H // 2`` after a
stride-2 convolution, ``H // 4`` after the v2 stem), ``nn.InstanceNorm2d`` on
the attention maps, the v2 value map reshaped to ``(H // sr, W // sr)``, and
the official module names, so an official state_dict loads with
``strict=True``. Consequently it fails on the input sizes where the official
code fails. It exists to check :class:`mmmetaformer.models.ResT` /
:class:`~mmmetaformer.models.ResTV2` against an independent path and to time
them against the official formulation; it is not part of the package's API.
"""
from typing import List, Sequence

import torch
import torch.nn as nn


class _PA(nn.Module):

    def __init__(self, dim):
        super().__init__()
        self.pa_conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x):
        return x * self.pa_conv(x).sigmoid()


class _Mlp(nn.Module):

    def __init__(self, dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _Attention(nn.Module):

    def __init__(self, dim, heads, sr, v2, eps):
        super().__init__()
        self.heads, self.sr_ratio, self.v2 = heads, sr, v2
        self.scale = (dim // heads)**-0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        if sr > 1:
            self.sr = nn.Conv2d(dim, dim, sr + 1, sr, sr // 2, groups=dim)
            self.sr_norm = nn.LayerNorm(dim, eps=eps)
        self.transform = not v2 and heads > 1
        if self.transform:
            self.transform_conv = nn.Conv2d(heads, heads, 1)
            self.transform_norm = nn.InstanceNorm2d(heads)
        if v2:
            self.up = nn.Sequential(
                nn.Conv2d(dim, sr * sr * dim, 3, padding=1, groups=dim),
                nn.PixelShuffle(sr))
            self.up_norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x, H, W):
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.heads, -1).permute(0, 2, 1, 3)
        if self.sr_ratio > 1:
            y = x.permute(0, 2, 1).reshape(B, C, H, W)
            y = self.sr(y).reshape(B, C, -1).permute(0, 2, 1)
            y = self.sr_norm(y)
        else:
            y = x
        kv = self.kv(y).reshape(B, -1, 2, self.heads, C // self.heads)
        k, v = kv.permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        if self.transform:
            attn = self.transform_conv(attn)
            attn = self.transform_norm(attn.softmax(dim=-1))
        else:
            attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(B, N, C)
        if self.v2:
            v_map = v.transpose(-1, -2).reshape(B, C, H // self.sr_ratio,
                                                W // self.sr_ratio)
            up = self.up(v_map).flatten(2).transpose(1, 2)
            out = out + self.up_norm(up)
        return self.proj(out)


class _Block(nn.Module):

    def __init__(self, dim, heads, sr, v2, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = _Attention(dim, heads, sr, v2, eps)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = _Mlp(dim)

    def forward(self, x, H, W):
        x = x + self.attn(self.norm1(x), H, W)
        return x + self.mlp(self.norm2(x))


class _ChannelsFirstLN(nn.Module):

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class OfficialResT(nn.Module):
    """ResT v1 dense backbone as the official detectron2 code computes it
    (stage-k norms in the trunk, stage 4 through the final ``norm``).

    Args:
        embed_dims, depths, num_heads (Sequence[int]): The arch.
        out_stages (Sequence[int]): Returned stages (1-based, official
            ``OUT_FEATURES``); a norm ``norm{k}`` exists for k < 4 in it.
    """

    def __init__(self, embed_dims: Sequence[int], depths: Sequence[int],
                 num_heads: Sequence[int] = (1, 2, 4, 8),
                 out_stages: Sequence[int] = (1, 2, 3, 4)) -> None:
        super().__init__()
        c0, eps = embed_dims[0], 1e-5
        self.out_stages = tuple(out_stages)
        self.stem = nn.Module()
        self.stem.conv1 = nn.Conv2d(3, c0 // 2, 3, 2, 1, bias=False)
        self.stem.norm1 = nn.BatchNorm2d(c0 // 2)
        self.stem.conv2 = nn.Conv2d(c0 // 2, c0 // 2, 3, 1, 1, bias=False)
        self.stem.norm2 = nn.BatchNorm2d(c0 // 2)
        self.stem.conv3 = nn.Conv2d(c0 // 2, c0, 3, 2, 1, bias=False)
        self.stem.pos = _PA(c0)
        for k in (2, 3, 4):
            embed = nn.Module()
            embed.conv = nn.Conv2d(embed_dims[k - 2], embed_dims[k - 1], 3, 2,
                                   1)
            embed.norm = nn.BatchNorm2d(embed_dims[k - 1])
            embed.pos = _PA(embed_dims[k - 1])
            setattr(self, f'patch_embed_{k}', embed)
        for k in range(4):
            setattr(self, f'stage{k + 1}', nn.ModuleList([
                _Block(embed_dims[k], num_heads[k], 2**(3 - k), False, eps)
                for _ in range(depths[k])]))
            if k < 3 and k + 1 in self.out_stages:
                setattr(self, f'norm{k + 1}',
                        nn.LayerNorm(embed_dims[k], eps=eps))
        self.norm = nn.LayerNorm(embed_dims[3], eps=eps)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        s = self.stem
        x = s.norm1(s.conv1(x)).relu()
        x = s.norm2(s.conv2(x)).relu()
        x = s.pos(s.conv3(x))
        B, _, H, W = x.shape
        outs = []
        for k in range(1, 5):
            if k > 1:
                embed = getattr(self, f'patch_embed_{k}')
                x = embed.pos(embed.norm(embed.conv(x)))
                H, W = H // 2, W // 2  # the official bookkeeping
            x = x.flatten(2).transpose(1, 2)
            for blk in getattr(self, f'stage{k}'):
                x = blk(x, H, W)
            if k == 4:
                x = self.norm(x)
            elif k in self.out_stages:
                x = getattr(self, f'norm{k}')(x)
            x = x.transpose(1, 2).reshape(B, -1, H, W)
            if k in self.out_stages:
                outs.append(x)
        return outs


class OfficialResTV2(nn.Module):
    """ResTv2 dense backbone as the official detectron2 code computes it
    (keys ``norm_k.0.*``; the norms are side branches).

    Args:
        embed_dims, depths, num_heads (Sequence[int]): The arch.
    """

    def __init__(self, embed_dims: Sequence[int], depths: Sequence[int],
                 num_heads: Sequence[int] = (1, 2, 4, 8)) -> None:
        super().__init__()
        c0, eps = embed_dims[0], 1e-6
        self.stem = nn.Module()
        self.stem.proj = nn.Sequential(
            nn.Conv2d(3, c0 // 2, 3, 2, 1, bias=False),
            nn.BatchNorm2d(c0 // 2), nn.ReLU(),
            nn.Conv2d(c0 // 2, c0, 3, 2, 1, bias=False), nn.BatchNorm2d(c0),
            nn.ReLU(), nn.Conv2d(c0, c0, 1))
        self.stem.pos = _PA(c0)
        self.stem.norm = nn.LayerNorm(c0, eps=eps)
        for k in (2, 3, 4):
            embed = nn.Module()
            embed.proj = nn.Conv2d(embed_dims[k - 2], embed_dims[k - 1], 3, 2,
                                   1)
            embed.pos = _PA(embed_dims[k - 1])
            embed.norm = nn.LayerNorm(embed_dims[k - 1], eps=eps)
            setattr(self, f'patch_{k}', embed)
        for k in range(4):
            setattr(self, f'stage{k + 1}', nn.ModuleList([
                _Block(embed_dims[k], num_heads[k], 2**(3 - k), True, eps)
                for _ in range(depths[k])]))
            setattr(self, f'norm_{k + 1}',
                    nn.Sequential(_ChannelsFirstLN(embed_dims[k])))

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        B, _, H, W = x.shape
        x = self.stem.pos(self.stem.proj(x))
        H, W = H // 4, W // 4  # the official bookkeeping
        x = self.stem.norm(x.flatten(2).transpose(1, 2))
        outs = []
        for k in range(1, 5):
            if k > 1:
                embed = getattr(self, f'patch_{k}')
                x = embed.pos(embed.proj(x))
                H, W = H // 2, W // 2
                x = embed.norm(x.flatten(2).transpose(1, 2))
            for blk in getattr(self, f'stage{k}'):
                x = blk(x, H, W)
            x = x.transpose(1, 2).reshape(B, -1, H, W)
            outs.append(getattr(self, f'norm_{k}')(x))
        return outs
