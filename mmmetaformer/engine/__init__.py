"""Training components of mmmetaformer (registered into mmengine's
registries, so mmdet, mmseg and mmpretrain configs find them)."""
from .hooks import AtomicCheckpointHook
from .optimizers import LayerDecayOptimWrapperConstructor

__all__ = ['AtomicCheckpointHook', 'LayerDecayOptimWrapperConstructor']
