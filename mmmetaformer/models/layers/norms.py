"""Normalisation layers for channels-last feature maps (B, H, W, C).

Every MetaFormer-style family in this package keeps its tokens channels-last
between layers, so all norms here take ``(B, H, W, C)`` (or ``(B, N, C)``)
tensors. The families differ only in the axes the statistics are taken over
and in whether there is a bias:

* ``'LN'``: mean and variance over C (a channel LayerNorm). Used by CycleMLP,
  ResT, ConvFormer/CAFormer blocks and the MetaFormer stems/downsamplers.
* ``'GN1'``: mean and variance over (H, W, C) of each sample, with a
  per-channel affine (``GroupNorm(1, C)``; the "modified LayerNorm" of
  PoolFormer v1/v2, IdentityFormer and RandFormer).

Use :func:`build_norm` with a config such as ``dict(type='LN', eps=1e-6,
bias=False)``.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class GroupNorm1(nn.Module):
    """``GroupNorm(1, C)`` for channels-last tensors.

    Normalises each sample over all of its remaining dimensions (H, W and C),
    then applies a per-channel weight and, optionally, a bias.

    Args:
        num_channels (int): Number of channels C (the last dimension).
        eps (float): Added to the variance. Defaults to 1e-5.
        bias (bool): Whether to learn a per-channel bias. Defaults to True.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5,
                 bias: bool = True) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ``group_norm`` with one group on the NCHW view of the channels-last
        # map (``channels_last`` memory, no copy on CPU): statistics over H,
        # W and C and the per-channel affine in one kernel, output
        # channels_last, so it permutes back to a contiguous (B, H, W, C)
        # map. No shape-dependent argument enters the graph (ONNX export
        # with dynamic H and W stays valid). The affine is applied in the
        # input's dtype: under bfloat16 autocast float32 parameters would
        # promote the map.
        weight = self.weight.to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        nchw = x.permute(0, 3, 1, 2)
        if not self._affine_grad_only(x):
            return F.group_norm(nchw, 1, weight, bias,
                                self.eps).permute(0, 2, 3, 1)
        # PyTorch's CPU group_norm backward dies with SIGSEGV on a
        # channels_last input that needs no gradient while the weight or
        # bias does (seen on torch 2.13.0 and 2.1.2; the first block after a
        # frozen stem, ``frozen_stages=0``). Normalising without the affine
        # and applying it on the (B, H, W, C) map gives the same values and
        # gradients through ops that have no such bug.
        out = F.group_norm(nchw, 1, None, None, self.eps).permute(0, 2, 3, 1)
        return out * weight if bias is None else torch.addcmul(
            bias, out, weight)

    def _affine_grad_only(self, x: torch.Tensor) -> bool:
        """Whether autograd will need gradients of the affine parameters but
        not of ``x`` (the combination that crashes the fused kernel)."""
        if not torch.is_grad_enabled() or x.requires_grad:
            return False
        return any(p is not None and p.requires_grad
                   for p in (self.weight, self.bias))

    def extra_repr(self) -> str:
        return (f'{self.num_channels}, eps={self.eps}, '
                f'bias={self.bias is not None}')


class LayerNorm(nn.LayerNorm):
    """Channel LayerNorm over the last dimension (optionally without bias)."""

    def __init__(self, num_channels: int, eps: float = 1e-5,
                 bias: bool = True) -> None:
        super().__init__(num_channels, eps=eps, bias=bias)


NORM_LAYERS = {'LN': LayerNorm, 'GN1': GroupNorm1}


def build_norm(cfg: Optional[dict], num_channels: int) -> nn.Module:
    """Build a channels-last norm layer from a config dict.

    Args:
        cfg (dict | None): ``dict(type=<'LN' | 'GN1'>, eps=..., bias=...)``.
            ``None`` gives ``nn.Identity``.
        num_channels (int): Number of channels.

    Returns:
        nn.Module: The norm layer.
    """
    if cfg is None:
        return nn.Identity()
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(
            f'A norm config must be a dict with a "type" key (one of '
            f'{sorted(NORM_LAYERS)}) or None, got {cfg!r}.')
    args = dict(cfg)
    norm_type = args.pop('type')
    if norm_type not in NORM_LAYERS:
        raise ValueError(f'Unknown norm type {norm_type!r}; valid choices are '
                         f'{sorted(NORM_LAYERS)}.')
    unknown = set(args) - {'eps', 'bias'}
    if unknown:
        raise ValueError(f'Unknown norm arguments {sorted(unknown)} for '
                         f'{norm_type!r}; valid ones are ["bias", "eps"].')
    eps = args.get('eps', 1e-5)
    if (isinstance(eps, bool) or not isinstance(eps, (int, float))
            or not 0 < eps < float('inf')):
        raise ValueError(f'Norm eps must be a positive number, got {eps!r}.')
    if not isinstance(args.get('bias', True), bool):
        raise ValueError('Norm bias must be True or False, got '
                         f'{args["bias"]!r}.')
    return NORM_LAYERS[norm_type](num_channels, **args)
