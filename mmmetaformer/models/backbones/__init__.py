from .base import MetaFormerBackbone, MetaFormerBlock, MetaFormerStage
from .cyclemlp import CycleMLP
from .metaformer_baselines import (CAFormer, ConvFormer, IdentityFormer,
                                   PoolFormerV2, RandFormer)
from .poolformer import PoolFormer
from .rest import ResT, ResTV2
from .pit import PiT  # noqa: F401
from .mlp_mixer import MLPMixer  # noqa: F401
from .resmlp import ResMLP  # noqa: F401

__all__ = [
    'MetaFormerBackbone', 'MetaFormerBlock', 'MetaFormerStage', 'PoolFormer',
    'CycleMLP', 'ResT', 'ResTV2', 'PoolFormerV2', 'IdentityFormer',
    'RandFormer', 'ConvFormer', 'CAFormer'
]
