from .base import MetaFormerBackbone, MetaFormerBlock, MetaFormerStage
from .poolformer import PoolFormer

__all__ = [
    'MetaFormerBackbone', 'MetaFormerBlock', 'MetaFormerStage', 'PoolFormer'
]
