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
import torch.nn as nn

from mmmetaformer.registry import MODELS
from ..layers import MultiheadSelfAttention, Pooling, RandomMixing, SepConv
from .base import ArchKey, MetaFormerBackbone

IMAGENET_URL = 'https://huggingface.co/sail/dl/resolve/main/{}/{}.pth'

_LN_NO_BIAS = dict(type='LN', eps=1e-6, bias=False)
_GN1_NO_BIAS = dict(type='GN1', eps=1e-6, bias=False)

#: Official names (sail-sg/metaformer) -> this package's. timm's backbone
#: names (``stem.*``, ``stages.i.downsample.*``, ``stages.i.blocks.j.*``)
#: are this package's already.
METAFORMER_KEY_RULES = [
    (r'downsample_layers\.0\.conv\.', 'stem.conv.'),
    (r'downsample_layers\.0\.post_norm\.', 'stem.norm.'),
    (r'downsample_layers\.([1-3])\.pre_norm\.', 'stages.{1}.downsample.norm.'),
    (r'downsample_layers\.([1-3])\.conv\.', 'stages.{1}.downsample.conv.'),
    (r'stages\.(\d+)\.(\d+)\.', 'stages.{1}.blocks.{2}.'),
]


class MetaFormerBaseline(MetaFormerBackbone):
    """Base of the five MetaFormer-baseline families (not registered).

    Subclasses set ``arch_settings``, ``block_norm``, ``default_out_norm``,
    ``family`` and implement :meth:`build_token_mixer`.

    Arch keys (besides ``embed_dims`` and ``depths``): ``mlp_ratios``
    (scalar or per stage, default 4), ``res_scale_init_values`` (per stage,
    None = plain shortcut; default ``[None, None, 1.0, 1.0]``) and
    ``layer_scale_init_values`` (per stage or scalar, default None = no layer
    scale, as in every released model).

    Checkpoint formats: ``'official'`` (keys under ``downsample_layers.``,
    the sail-sg releases), ``'timm'`` (a timm classifier, ``head.*``; timm's
    4-D 1x1-conv MLP / SepConv weights are reshaped by the loader) and
    ``'native'`` (this package's names, e.g. a detector's ``backbone.*``
    with ``prefix='backbone.'``).

    Args:
        arch (str | dict): An arch name of the family or a dict of arch keys.
        **kwargs: The arguments of :class:`MetaFormerBackbone`:
            ``in_channels``, ``out_indices``, ``out_norm``,
            ``frozen_stages``, ``norm_eval``, ``with_cp``,
            ``drop_path_rate``, ``init_cfg``.
    """
    arch_keys = dict(
        MetaFormerBackbone.arch_keys,
        res_scale_init_values=ArchKey([None, None, 1.0, 1.0],
                                      kind='positive_number', optional=True),
        layer_scale_init_values=ArchKey(None, kind='positive_number',
                                        optional=True))
    block_norm: dict = _GN1_NO_BIAS
    mlp_act = 'StarReLU'
    mlp_bias = False
    layer_scale_key = 'layer_scale_init_values'
    res_scale_key = 'res_scale_init_values'
    # official init: truncated normal (std 0.02) for Linear and Conv weights
    init_rule = {(nn.Linear, nn.Conv2d): 'trunc_normal'}
    embed_norm: dict = _LN_NO_BIAS  # post-norm in the stem, pre-norm after
    official_key_rules = METAFORMER_KEY_RULES
    checkpoint_formats = (('official', r'downsample_layers\.'),
                          ('timm', r'head\.'),
                          # a head-less timm state_dict: 1x1-conv MLPs
                          ('timm', r'.*mlp\.fc1\.weight$', 4))
    family: str = ''

    @classmethod
    def imagenet_url(cls, arch: str) -> str:
        """URL of the official ImageNet-1k (224) release of ``arch``."""
        releases = {name: f'{cls.family}_{name}' for name in cls.arch_settings}
        return IMAGENET_URL.format(cls.family,
                                   cls._release_name(arch, releases))


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


class _GN1Baseline(MetaFormerBaseline):
    """PoolFormerV2 / IdentityFormer / RandFormer: the ``s12`` ... ``m48``
    archs, ``GN1`` block norms (weight only, eps 1e-6) and ``GN1`` output
    norms (with bias, eps 1e-6)."""
    arch_settings = _SMALL_ARCHS
    default_arch = 's12'
    block_norm = _GN1_NO_BIAS
    default_out_norm = dict(type='GN1', eps=1e-6)


class _LNBaseline(MetaFormerBaseline):
    """ConvFormer / CAFormer: the ``s18`` ... ``b36`` archs, channel ``LN``
    block norms (weight only, eps 1e-6) and ``LN`` output norms (with bias,
    eps 1e-6)."""
    arch_settings = _CONV_ARCHS
    default_arch = 's18'
    block_norm = _LN_NO_BIAS
    default_out_norm = dict(type='LN', eps=1e-6)


@MODELS.register_module()
class PoolFormerV2(_GN1Baseline):
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
    family = 'poolformerv2'

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        return Pooling(3)


@MODELS.register_module()
class IdentityFormer(_GN1Baseline):
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
    family = 'identityformer'

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        return nn.Identity()


@MODELS.register_module()
class RandFormer(_GN1Baseline):
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
    arch_keys = dict(
        MetaFormerBaseline.arch_keys,
        random_windows=ArchKey([None, None, 14, 7], optional=True))
    family = 'randformer'

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        window = self.arch['random_windows'][stage]
        return nn.Identity() if window is None else RandomMixing(window)


@MODELS.register_module()
class ConvFormer(_LNBaseline):
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
    family = 'convformer'

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        return SepConv(dim)


@MODELS.register_module()
class CAFormer(_LNBaseline):
    """CAFormer: :class:`SepConv` mixers in stages 0-1 and global attention
    (:class:`~mmmetaformer.models.layers.MultiheadSelfAttention`, head_dim
    32, no biases, computed with PyTorch's fused
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
    arch_keys = dict(
        MetaFormerBaseline.arch_keys,
        head_dim=ArchKey(32, per_stage=False))
    family = 'caformer'
    attention_stages = (2, 3)

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        if stage in self.attention_stages:
            return MultiheadSelfAttention(
                dim, head_dim=self.arch['head_dim'], qkv_bias=False,
                proj_bias=False)
        return SepConv(dim)
