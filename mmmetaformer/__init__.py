"""mmmetaformer: MetaFormer-style backbones for mmdet 3.x, mmseg 1.x and
mmpretrain (PoolFormer v1/v2, IdentityFormer, RandFormer, ConvFormer,
CAFormer, ResT/ResTv2, CycleMLP).

Use in a config with ``custom_imports=dict(imports=['mmmetaformer'],
allow_failed_imports=False)``.

Importing the package only registers its modules (backbones, the optimizer
wrapper constructor, hooks); it changes no global state of numpy, torch or
mmengine. What the tools change around a Runner (mmengine's checkpoint
loaders, CPU threads, ...) is in :mod:`mmmetaformer.runner` and applied
only there, or by an explicit call.
"""
from . import models  # noqa: F401  (registers the backbones)
from . import engine  # noqa: F401  (registers the constructor and hooks)
from .version import __version__

__all__ = ['__version__']
