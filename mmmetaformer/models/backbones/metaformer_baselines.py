"""The MetaFormer baselines ("MetaFormer Baselines for Vision"): PoolFormerV2,
IdentityFormer, RandFormer, ConvFormer and CAFormer as dense backbones.

All five families share one network (sail-sg/metaformer
``metaformer_baselines.py``), which :class:`MetaFormerBaseline` builds on the
generic :class:`~.base.MetaFormerBackbone`:

* stem: Conv2d 7x7 / stride 4 / padding 2, then a channel LayerNorm without
  bias (eps 1e-6) -- a *post*-norm;
* downsamplers (stages 1-3): a channel LayerNorm without bias (eps 1e-6),
  then Conv2d 3x3 / stride 2 / padding 1 -- a *pre*-norm;
* blocks: ``x = rs1(x) + mixer(norm1(x))``, ``x = rs2(x) + mlp(norm2(x))``
  with an MLP ``fc1 -> StarReLU -> fc2`` (ratio 4, no biases), no layer
  scale, and a learnable *residual* scale ``rs`` (init 1.0) on the shortcut
  of stages 2 and 3 only.

A family differs only in its arch table, its block norm and its token
mixers:

============== ============================ =========================
family         token mixers (stages 0..3)   block norm
============== ============================ =========================
PoolFormerV2   pooling x4                   ``GN1`` (over H, W, C)
IdentityFormer identity x4                  ``GN1``
RandFormer     identity x2, random mixing x2 ``GN1``
ConvFormer     SepConv x4                   ``LN`` (over C)
CAFormer       SepConv x2, attention x2     ``LN``
============== ============================ =========================

Both block norms are weight-only (no bias) with eps 1e-6.

**Output norms.** The official code has no dense mode: the reference data
and timm's feature API use the raw stage outputs, which ``out_norm=None``
returns. The default (``'default'``) adds one norm with a weight *and* a bias
to each returned map (modules ``norm{i}``, initialised to the identity
transform and trained with the detector), following the official dense
PoolFormer v1 and the usual ConvNeXt-style dense backbones: the raw outputs
are the un-normalised residual stream, whose scale grows with depth (and with
the residual scales of stages 2-3), which is a poor input for a freshly
initialised FPN. The norm is the family's own block norm type: ``GN1`` (eps
1e-6) for PoolFormerV2 / IdentityFormer / RandFormer -- as PoolFormer v1's
``GroupNorm(1, C)`` dense norms -- and a channel ``LN`` (eps 1e-6) for
ConvFormer / CAFormer.

**RandFormer at any input size.** The official random mixing matrix is
fixed to 196 tokens in stage 2 and 49 in stage 3, i.e. a 14x14 and a 7x7 map
(224x224 input). :class:`RandomMixing` applies the frozen matrix inside
non-overlapping 14x14 (stage 2) / 7x7 (stage 3) windows tiled from the
top-left corner. Where the map is not a multiple of the window, the last
window row / column is a partial window: it is computed as a full window
whose missing tokens (beyond the bottom / right border) are zero, i.e. with
the sub-matrix of the matrix restricted to the tokens that exist (no
renormalisation). At a 14x14 stage-2 map (224x224 input) this is exactly the
official computation.

**Checkpoints.** The official releases (flat state_dicts,
``https://huggingface.co/sail/dl/resolve/main/<family>/<name>.pth``) and the
timm copies (``timm/<name>.sail_in1k``) load through
``init_cfg=dict(type='Pretrained', checkpoint=...)``. The classifier
(``norm.*``, ``head.*``, including the MlpHead of ConvFormer/CAFormer and
timm's ``head.norm.*`` / ``head.fc.*``) is reported as ignored, the dense
output norms as expected-missing.
"""
from typing import Dict, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model.weight_init import trunc_normal_

from mmmetaformer.registry import MODELS
from ..layers import Mlp, Pooling, StarReLU, build_norm
from .base import NUM_STAGES, MetaFormerBackbone, MetaFormerBlock, rename_keys

IMAGENET_URL = 'https://huggingface.co/sail/dl/resolve/main/{}/{}.pth'

_LN_NO_BIAS = dict(type='LN', eps=1e-6, bias=False)
_GN1_NO_BIAS = dict(type='GN1', eps=1e-6, bias=False)


# ---------------------------------------------------------------- mixers
class SepConv(nn.Module):
    """Inverted separable convolution of ConvFormer / CAFormer (MobileNetV2
    style), on channels-last tokens.

    ``pwconv1`` (Linear C -> rC, no bias) -> ``act1`` (StarReLU) ->
    ``dwconv`` (depthwise k x k, no bias) -> ``pwconv2`` (Linear rC -> C, no
    bias).

    Args:
        dim (int): Channels C.
        expansion_ratio (float): Hidden channels are ``int(r * C)``.
            Defaults to 2.
        kernel_size (int): Odd depthwise kernel size. Defaults to 7.
    """

    def __init__(self, dim: int, expansion_ratio: float = 2,
                 kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(
                f'kernel_size must be odd, got {kernel_size!r}.')
        hidden = int(expansion_ratio * dim)
        self.pwconv1 = nn.Linear(dim, hidden, bias=False)
        self.act1 = StarReLU()
        self.dwconv = nn.Conv2d(
            hidden,
            hidden,
            kernel_size=kernel_size,
            padding=kernel_size // 2,
            groups=hidden,
            bias=False)
        self.pwconv2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.pwconv1(x))
        # (B, H, W, C) contiguous -> an NCHW view in channels_last memory:
        # the depthwise conv runs without a copy and its output permutes back
        # to a contiguous channels-last tensor.
        x = self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.pwconv2(x)


class Attention(nn.Module):
    """Global multi-head self-attention of CAFormer, on channels-last tokens.

    ``heads = dim // head_dim``; ``qkv`` (Linear, no bias) produces channels
    ordered (q/k/v, head, d); each head computes ``softmax(q k^T /
    sqrt(head_dim)) v`` over all H*W tokens with
    :func:`torch.nn.functional.scaled_dot_product_attention` (a fused kernel
    where one exists: the N x N attention matrix is not materialised), then
    ``proj`` (Linear, no bias) maps the concatenated heads back to ``dim``.

    Args:
        dim (int): Channels C.
        head_dim (int): Channels per head. Defaults to 32.
    """

    def __init__(self, dim: int, head_dim: int = 32) -> None:
        super().__init__()
        if not isinstance(head_dim, int) or head_dim < 1:
            raise ValueError(
                f'head_dim must be a positive int, got {head_dim!r}.')
        self.head_dim = head_dim
        self.num_heads = max(dim // head_dim, 1)
        inner = self.num_heads * head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.proj = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, _ = x.shape
        qkv = self.qkv(x).reshape(B, H * W, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, d)
        x = x.transpose(1, 2).reshape(B, H, W, self.num_heads * self.head_dim)
        return self.proj(x)

    def extra_repr(self) -> str:
        return f'num_heads={self.num_heads}, head_dim={self.head_dim}'


class RandomMixing(nn.Module):
    """RandFormer's token mixer: a frozen random N x N matrix mixes the
    tokens, ``out[b, m, c] = sum_n R[m, n] * x[b, n, c]`` with tokens
    flattened row-major inside a ``window x window`` window (N = window**2).

    The official model applies R to the whole map, so it only runs when the
    map is exactly ``window x window``. Here the map is tiled from the
    top-left corner into non-overlapping windows and R mixes each window; a
    window cut by the bottom / right border is computed as if its missing
    tokens were zero (i.e. with R restricted to the existing tokens, not
    renormalised). On a ``window x window`` map this is exactly the official
    computation.

    ``random_matrix`` is an ``nn.Parameter`` with ``requires_grad=False``
    (as in the official state_dict and parameter counts) and is used
    detached, so it never receives a gradient: optimisers skip it (its
    ``grad`` stays None) whatever ``requires_grad`` is later set to, and
    ``frozen_stages`` has nothing to change on it. A loaded matrix is used
    as is. The initial value is the official one: a row-wise softmax of
    uniform random numbers.

    Args:
        window (int): Window side; the matrix is ``window**2`` square.
    """

    def __init__(self, window: int) -> None:
        super().__init__()
        if not isinstance(window, int) or window < 1:
            raise ValueError(
                f'window must be a positive int, got {window!r}.')
        self.window = window
        num_tokens = window * window
        self.random_matrix = nn.Parameter(
            torch.softmax(torch.rand(num_tokens, num_tokens), dim=-1),
            requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        s = self.window
        matrix = self.random_matrix.detach()
        if H == s and W == s:  # the official case: one full window
            out = torch.matmul(matrix, x.reshape(B, s * s, C))
            return out.reshape(B, H, W, C)
        pad_h, pad_w = -H % s, -W % s
        if pad_h or pad_w:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        nh, nw = (H + pad_h) // s, (W + pad_w) // s
        windows = x.reshape(B, nh, s, nw, s, C).transpose(2, 3).reshape(
            B, nh * nw, s * s, C)
        out = torch.matmul(matrix, windows)
        out = out.reshape(B, nh, nw, s, s, C).transpose(2, 3).reshape(
            B, nh * s, nw * s, C)
        if pad_h or pad_w:
            out = out[:, :H, :W].contiguous()
        return out

    def extra_repr(self) -> str:
        return f'window={self.window}'


# ------------------------------------------------------------ checkpoints
_OFFICIAL_RULES = [
    (r'^downsample_layers\.0\.conv\.', 'stem.conv.'),
    (r'^downsample_layers\.0\.post_norm\.', 'stem.norm.'),
    (r'^downsample_layers\.([1-3])\.pre_norm\.',
     r'stages.\1.downsample.norm.'),
    (r'^downsample_layers\.([1-3])\.conv\.', r'stages.\1.downsample.conv.'),
    (r'^stages\.(\d+)\.(\d+)\.', r'stages.\1.blocks.\2.'),
]


def convert_metaformer_official(
        state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename official MetaFormer-baseline keys (sail-sg/metaformer) to this
    package's names.

    ``downsample_layers.0.{conv,post_norm}`` -> ``stem.{conv,norm}``,
    ``downsample_layers.i.{pre_norm,conv}`` -> ``stages.i.downsample.{norm,
    conv}``, ``stages.i.j.`` -> ``stages.i.blocks.j.``. The classifier
    (``norm.*``, ``head.*``) keeps its names.
    """
    return rename_keys(state_dict, _OFFICIAL_RULES)


def convert_metaformer_timm(
        state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename timm MetaFormer keys (``timm/models/metaformer.py``) to this
    package's names.

    timm's backbone names (``stem.*``, ``stages.i.downsample.*``,
    ``stages.i.blocks.j.*``) are this package's names, so only the
    classifier differs (``head.norm.*``, ``head.fc.*``), which keeps its
    ``head.`` prefix and is ignored on load. timm's 4-D 1x1-conv weights
    (MLP / SepConv pointwise layers) are reshaped to Linear by the loader.
    """
    return dict(state_dict)


# -------------------------------------------------------------- backbones
class MetaFormerBaseline(MetaFormerBackbone):
    """Base of the five MetaFormer-baseline families (not registered).

    Subclasses set ``arch_settings``, ``block_norm``, ``default_out_norm``
    and implement :meth:`build_token_mixer`.

    Arch keys (besides ``embed_dims`` and ``depths``): ``mlp_ratios``
    (scalar or per stage, default 4), ``res_scale_init_values`` (per stage,
    None = plain shortcut; default ``[None, None, 1.0, 1.0]``) and
    ``layer_scale_init_values`` (per stage or scalar, default None = no layer
    scale, as in every released model).

    Args:
        arch (str | dict): An arch name of the family or a dict of arch keys.
        **kwargs: The arguments of :class:`MetaFormerBackbone`:
            ``in_channels``, ``out_indices``, ``out_norm``,
            ``frozen_stages``, ``norm_eval``, ``with_cp``,
            ``drop_path_rate``, ``init_cfg``.
    """
    arch_defaults = dict(
        mlp_ratios=4,
        res_scale_init_values=[None, None, 1.0, 1.0],
        layer_scale_init_values=None)
    block_norm: dict = _GN1_NO_BIAS
    embed_norm: dict = _LN_NO_BIAS  # post-norm in the stem, pre-norm after
    family: str = ''

    # ----------------------------------------------------------- builders
    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        """The token mixer of every block of ``stage``."""
        raise NotImplementedError

    def build_block(self, stage: int, index: int, dim: int,
                    drop_path: float) -> nn.Module:
        hidden = int(dim * self._per_stage_number('mlp_ratios')[stage])
        return MetaFormerBlock(
            dim,
            token_mixer=self.build_token_mixer(stage, dim),
            mlp=Mlp(dim, hidden, act='StarReLU', bias=False),
            norm1=build_norm(self.block_norm, dim),
            norm2=build_norm(self.block_norm, dim),
            drop_path=drop_path,
            layer_scale_init_value=self._per_stage_number(
                'layer_scale_init_values', optional=True)[stage],
            res_scale_init_value=self._per_stage_number(
                'res_scale_init_values', optional=True)[stage])

    def _per_stage_number(self, key: str, optional: bool = False) -> list:
        """``per_stage(key)``, validated as positive numbers (or None)."""
        values = self.per_stage(key)
        for value in values:
            if value is None and optional:
                continue
            if isinstance(value, bool) or not isinstance(
                    value, (int, float)) or value <= 0:
                raise ValueError(
                    f'arch[{key!r}] must hold positive numbers'
                    f'{" or None" if optional else ""} (a scalar or '
                    f'{NUM_STAGES} values), got {self.arch[key]!r}.')
        return values

    def _init_module(self, module: nn.Module) -> None:
        """Official init: truncated normal (std 0.02) for Linear and Conv
        weights, zero biases."""
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    # -------------------------------------------------------- checkpoints
    @classmethod
    def convert_checkpoint(cls, state_dict: Dict[str, torch.Tensor]
                           ) -> Tuple[Dict[str, torch.Tensor], str]:
        """Detect the key format and convert to this module's names.

        * ``'official'``: keys under ``downsample_layers.`` (sail-sg
          releases);
        * ``'timm'``: a timm classifier (``head.*`` keys) or timm's 4-D
          1x1-conv MLP weights;
        * ``'native'``: anything else (this package's names, e.g. a
          detector's ``backbone.*`` with ``prefix='backbone.'``).
        """
        if any(k.startswith('downsample_layers.') for k in state_dict):
            return convert_metaformer_official(state_dict), 'official'
        if any(
                k.startswith('head.') or (k.endswith('mlp.fc1.weight')
                                          and v.dim() == 4)
                for k, v in state_dict.items()):
            return convert_metaformer_timm(state_dict), 'timm'
        return dict(state_dict), 'native'

    @classmethod
    def imagenet_url(cls, arch: str) -> str:
        """URL of the official ImageNet-1k (224) release of ``arch``."""
        if arch not in cls.arch_settings:
            raise ValueError(f'Unknown arch {arch!r} for {cls.__name__}; '
                             f'valid choices are {sorted(cls.arch_settings)}.')
        return IMAGENET_URL.format(cls.family, f'{cls.family}_{arch}')


_SMALL = dict(embed_dims=[64, 128, 320, 512])
_MEDIUM = dict(embed_dims=[96, 192, 384, 768])
_SMALL_ARCHS = {
    's12': dict(**_SMALL, depths=[2, 2, 6, 2]),
    's24': dict(**_SMALL, depths=[4, 4, 12, 4]),
    's36': dict(**_SMALL, depths=[6, 6, 18, 6]),
    'm36': dict(**_MEDIUM, depths=[6, 6, 18, 6]),
    'm48': dict(**_MEDIUM, depths=[8, 8, 24, 8]),
}
_CONV_ARCHS = {
    's18': dict(embed_dims=[64, 128, 320, 512], depths=[3, 3, 9, 3]),
    's36': dict(embed_dims=[64, 128, 320, 512], depths=[3, 12, 18, 3]),
    'm36': dict(embed_dims=[96, 192, 384, 576], depths=[3, 12, 18, 3]),
    'b36': dict(embed_dims=[128, 256, 512, 768], depths=[3, 12, 18, 3]),
}


@MODELS.register_module()
class PoolFormerV2(MetaFormerBaseline):
    """PoolFormerV2: the MetaFormer baseline with the pooling mixer
    ``avgpool3x3(x) - x`` (``count_include_pad=False``) in every stage.

    =====  =================  ==============
    arch   embed_dims         depths
    =====  =================  ==============
    s12    64, 128, 320, 512  2, 2, 6, 2
    s24    64, 128, 320, 512  4, 4, 12, 4
    s36    64, 128, 320, 512  6, 6, 18, 6
    m36    96, 192, 384, 768  6, 6, 18, 6
    m48    96, 192, 384, 768  8, 8, 24, 8
    =====  =================  ==============

    Block norms: ``GN1`` (over H, W, C; weight only, eps 1e-6). Default
    output norm: ``GN1`` with bias, eps 1e-6 (see the module docstring).

    Args:
        arch (str | dict): An arch name above or a dict of arch keys (see
            :class:`MetaFormerBaseline`). Defaults to ``'s12'``.
        **kwargs: The arguments of :class:`MetaFormerBackbone`.
    """
    arch_settings = _SMALL_ARCHS
    family = 'poolformerv2'
    block_norm = _GN1_NO_BIAS
    default_out_norm = dict(type='GN1', eps=1e-6)

    def __init__(self, arch: Union[str, dict] = 's12', **kwargs) -> None:
        super().__init__(arch=arch, **kwargs)

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        return Pooling(3)


@MODELS.register_module()
class IdentityFormer(MetaFormerBaseline):
    """IdentityFormer: the MetaFormer baseline with an identity token mixer
    (the branch is ``norm1(x)`` itself). Arch table as
    :class:`PoolFormerV2` (``s12``, ``s24``, ``s36``, ``m36``, ``m48``).

    Block norms: ``GN1`` (weight only, eps 1e-6). Default output norm:
    ``GN1`` with bias, eps 1e-6.

    Args:
        arch (str | dict): An arch name or a dict of arch keys (see
            :class:`MetaFormerBaseline`). Defaults to ``'s12'``.
        **kwargs: The arguments of :class:`MetaFormerBackbone`.
    """
    arch_settings = _SMALL_ARCHS
    family = 'identityformer'
    block_norm = _GN1_NO_BIAS
    default_out_norm = dict(type='GN1', eps=1e-6)

    def __init__(self, arch: Union[str, dict] = 's12', **kwargs) -> None:
        super().__init__(arch=arch, **kwargs)

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        return nn.Identity()


@MODELS.register_module()
class RandFormer(MetaFormerBaseline):
    """RandFormer: identity mixers in stages 0-1, frozen random token mixing
    (:class:`RandomMixing`) in stages 2-3. Arch table as
    :class:`PoolFormerV2` (``s12``, ``s24``, ``s36``, ``m36``, ``m48``).

    The extra arch key ``random_windows`` (per stage, default
    ``[None, None, 14, 7]``) is the side of the square window a stage's
    random matrix mixes (None = identity mixer). The official matrices are
    196 x 196 and 49 x 49 (the whole 14x14 / 7x7 map of a 224x224 input); at
    other sizes the matrix is applied per window, partial border windows
    being zero-padded (see :class:`RandomMixing`), so any input size >= 32
    works and 224x224 is the official computation.

    Block norms: ``GN1`` (weight only, eps 1e-6). Default output norm:
    ``GN1`` with bias, eps 1e-6.

    Args:
        arch (str | dict): An arch name or a dict of arch keys. Defaults to
            ``'s12'``.
        **kwargs: The arguments of :class:`MetaFormerBackbone`.
    """
    arch_settings = _SMALL_ARCHS
    arch_defaults = dict(
        MetaFormerBaseline.arch_defaults, random_windows=[None, None, 14, 7])
    family = 'randformer'
    block_norm = _GN1_NO_BIAS
    default_out_norm = dict(type='GN1', eps=1e-6)

    def __init__(self, arch: Union[str, dict] = 's12', **kwargs) -> None:
        super().__init__(arch=arch, **kwargs)

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        windows = self.arch['random_windows']
        if not isinstance(windows, (list, tuple)) or len(windows) != \
                NUM_STAGES or not all(w is None or (isinstance(w, int) and
                                                    w > 0) for w in windows):
            raise ValueError(
                f"arch['random_windows'] must be {NUM_STAGES} entries, each "
                f'None (identity mixer) or a positive int window side, got '
                f'{windows!r}.')
        window = windows[stage]
        return nn.Identity() if window is None else RandomMixing(window)


@MODELS.register_module()
class ConvFormer(MetaFormerBaseline):
    """ConvFormer: the MetaFormer baseline with :class:`SepConv` (pointwise
    -> StarReLU -> depthwise 7x7 -> pointwise) token mixers in every stage.

    =====  ==================  ==============
    arch   embed_dims          depths
    =====  ==================  ==============
    s18    64, 128, 320, 512   3, 3, 9, 3
    s36    64, 128, 320, 512   3, 12, 18, 3
    m36    96, 192, 384, 576   3, 12, 18, 3
    b36    128, 256, 512, 768  3, 12, 18, 3
    =====  ==================  ==============

    Block norms: channel ``LN`` (weight only, eps 1e-6). Default output
    norm: channel ``LN`` with bias, eps 1e-6.

    Args:
        arch (str | dict): An arch name above or a dict of arch keys (see
            :class:`MetaFormerBaseline`). Defaults to ``'s18'``.
        **kwargs: The arguments of :class:`MetaFormerBackbone`.
    """
    arch_settings = _CONV_ARCHS
    family = 'convformer'
    block_norm = _LN_NO_BIAS
    default_out_norm = dict(type='LN', eps=1e-6)

    def __init__(self, arch: Union[str, dict] = 's18', **kwargs) -> None:
        super().__init__(arch=arch, **kwargs)

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        return SepConv(dim)


@MODELS.register_module()
class CAFormer(MetaFormerBaseline):
    """CAFormer: :class:`SepConv` mixers in stages 0-1 and global
    :class:`Attention` (head_dim 32, computed with PyTorch's fused
    scaled-dot-product attention) in stages 2-3. Arch table as
    :class:`ConvFormer` (``s18``, ``s36``, ``m36``, ``b36``); heads per
    attention stage = channels / 32 (s18/s36: 10, 16; m36: 12, 18; b36: 16,
    24).

    The extra arch key ``head_dim`` (default 32) sets the attention head
    width. Block norms: channel ``LN`` (weight only, eps 1e-6). Default
    output norm: channel ``LN`` with bias, eps 1e-6.

    At detection resolution stage 2 holds many tokens (4,200 at 800x1333);
    ``with_cp=True`` trades a second forward for the activation memory.

    Args:
        arch (str | dict): An arch name or a dict of arch keys. Defaults to
            ``'s18'``.
        **kwargs: The arguments of :class:`MetaFormerBackbone`.
    """
    arch_settings = _CONV_ARCHS
    arch_defaults = dict(MetaFormerBaseline.arch_defaults, head_dim=32)
    family = 'caformer'
    block_norm = _LN_NO_BIAS
    default_out_norm = dict(type='LN', eps=1e-6)
    attention_stages = (2, 3)

    def __init__(self, arch: Union[str, dict] = 's18', **kwargs) -> None:
        super().__init__(arch=arch, **kwargs)

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        if stage in self.attention_stages:
            return Attention(dim, head_dim=self.arch['head_dim'])
        return SepConv(dim)
