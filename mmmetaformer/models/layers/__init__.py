from .drop import DropPath
from .embed import ConvEmbed
from .mixers import Pooling
from .mlp import Mlp, StarReLU, build_activation
from .norms import GroupNorm1, LayerNorm, build_norm
from .scale import Scale

__all__ = [
    'DropPath', 'ConvEmbed', 'Pooling', 'Mlp', 'StarReLU', 'build_activation',
    'GroupNorm1', 'LayerNorm', 'build_norm', 'Scale'
]
