from .base import ArchKey, MetaFormerBackbone, MetaFormerBlock, MetaFormerStage
from .cyclemlp import CycleMLP
from .metaformer_baselines import (CAFormer, ConvFormer, IdentityFormer,
                                   PoolFormerV2, RandFormer)
from .mlp_mixer import MLPMixer
from .pit import PiT
from .poolformer import PoolFormer
from .resmlp import ResMLP
from .rest import ResT, ResTV2

__all__ = [
    'ArchKey', 'MetaFormerBackbone', 'MetaFormerBlock', 'MetaFormerStage',
    'PoolFormer', 'CycleMLP', 'ResT', 'ResTV2', 'PoolFormerV2',
    'IdentityFormer', 'RandFormer', 'ConvFormer', 'CAFormer', 'PiT',
    'MLPMixer', 'ResMLP'
]
