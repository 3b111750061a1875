"""Layers of the MetaFormer families, all on channels-last tokens.

Token mixers (``(B, H, W, C) -> (B, H, W, C)``): :class:`Pooling`,
:class:`SepConv`, :class:`RandomMixing`, :class:`Attention` (mixers.py),
:class:`EMSA` (emsa.py), :class:`CycleMixer` / :class:`CycleFC` (cycle.py).
Block parts: :class:`Mlp` and activations (mlp.py), norms (norms.py),
:class:`Scale` (scale.py), :class:`DropPath` (drop.py); stems and
downsamplers: :class:`ConvEmbed` (embed.py).
"""
from .cycle import CycleFC, CycleMixer
from .drop import DropPath
from .embed import ConvEmbed
from .emsa import EMSA
from .mixers import Attention, Pooling, RandomMixing, SepConv
from .mlp import Mlp, StarReLU, build_activation
from .norms import GroupNorm1, LayerNorm, build_norm
from .scale import Scale
from .attention import MultiheadSelfAttention  # noqa: F401
from .pyramid import SimpleFeaturePyramid  # noqa: F401
from .token_mixing import Affine, WindowTokenMixing  # noqa: F401

__all__ = [
    'DropPath', 'ConvEmbed', 'Pooling', 'SepConv', 'RandomMixing',
    'Attention', 'EMSA', 'CycleFC', 'CycleMixer', 'Mlp', 'StarReLU',
    'build_activation', 'GroupNorm1', 'LayerNorm', 'build_norm', 'Scale'
]
