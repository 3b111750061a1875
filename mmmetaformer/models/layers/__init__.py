"""Layers of the MetaFormer families, all on channels-last tokens.

Token mixers (``(B, ..., C) -> (B, ..., C)``): :class:`Pooling`,
:class:`SepConv`, :class:`RandomMixing` (mixers.py),
:class:`MultiheadSelfAttention` (attention.py), :class:`EMSA` (emsa.py),
:class:`CycleMixer` / :class:`CycleFC` (cycle.py), :class:`WindowTokenMixing`
(token_mixing.py). Block parts: :class:`Mlp` and activations (mlp.py), norms
(norms.py, and ResMLP's :class:`Affine`), :class:`Scale` (scale.py),
:class:`DropPath` (drop.py); stems and downsamplers: :class:`ConvEmbed`
(embed.py); :class:`SimpleFeaturePyramid` (pyramid.py) for single-scale
backbones.
"""
from .attention import MultiheadSelfAttention
from .cycle import CycleFC, CycleMixer
from .drop import DropPath
from .embed import ConvEmbed
from .emsa import EMSA
from .mixers import Pooling, RandomMixing, SepConv
from .mlp import Mlp, StarReLU, build_activation
from .norms import GroupNorm1, LayerNorm, build_norm
from .pyramid import SimpleFeaturePyramid
from .scale import Scale
from .token_mixing import Affine, WindowTokenMixing

__all__ = [
    'DropPath', 'ConvEmbed', 'Pooling', 'SepConv', 'RandomMixing',
    'MultiheadSelfAttention', 'EMSA', 'CycleFC', 'CycleMixer',
    'WindowTokenMixing', 'Affine', 'SimpleFeaturePyramid', 'Mlp', 'StarReLU',
    'build_activation', 'GroupNorm1', 'LayerNorm', 'build_norm', 'Scale'
]
