from .base import MetaFormerBackbone, MetaFormerBlock, MetaFormerStage
from .cyclemlp import CycleMLP
from .poolformer import PoolFormer
from .rest import ResT, ResTV2

__all__ = [
    'MetaFormerBackbone', 'MetaFormerBlock', 'MetaFormerStage', 'PoolFormer',
    'CycleMLP', 'ResT', 'ResTV2'
]
