"""mmmetaformer: MetaFormer-style backbones for mmdet 3.x, mmseg 1.x and
mmpretrain (PoolFormer v1/v2, IdentityFormer, RandFormer, ConvFormer,
CAFormer, ResT/ResTv2, CycleMLP).

Use in a config with ``custom_imports=dict(imports=['mmmetaformer'],
allow_failed_imports=False)``.
"""
from . import compat  # noqa: F401  (torch 2.13 / numpy 2 fixes, see module)
from . import models  # noqa: F401  (registers the backbones)
from . import engine  # noqa: F401  (registers the optimizer constructor)
from .version import __version__

__all__ = ['__version__']
