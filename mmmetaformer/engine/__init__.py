"""Training components of mmmetaformer (registered into mmengine's
registries, so mmdet, mmseg and mmpretrain configs find them)."""
from .optimizers import LayerDecayOptimWrapperConstructor

__all__ = ['LayerDecayOptimWrapperConstructor']
