"""Training components of mmmetaformer (registered into mmengine's
registries, so mmdet, mmseg and mmpretrain configs find them)."""
from .hooks import AtomicCheckpointHook
from .optimizers import CPUAmpOptimWrapper, LayerDecayOptimWrapperConstructor

__all__ = [
    'AtomicCheckpointHook', 'CPUAmpOptimWrapper',
    'LayerDecayOptimWrapperConstructor'
]
