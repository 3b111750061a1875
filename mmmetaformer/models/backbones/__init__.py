from .base import MetaFormerBackbone, MetaFormerBlock, MetaFormerStage
from .cyclemlp import CycleMLP
from .poolformer import PoolFormer

__all__ = [
    'MetaFormerBackbone', 'MetaFormerBlock', 'MetaFormerStage', 'PoolFormer',
    'CycleMLP'
]
