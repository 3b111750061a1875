"""Detection heads that extend mmdet's (imported only where mmdet is: a
config lists ``mmmetaformer.models.dense_heads`` in ``custom_imports``).

Importing this package registers its heads into
:data:`mmmetaformer.registry.MODELS` and, under their unscoped names, into
mmdet's ``MODELS`` (:func:`mmmetaformer.models.register_into_downstream`).
"""
from mmmetaformer.models import register_into_downstream

from .detectron2_retina_head import Detectron2RetinaHead

register_into_downstream(('mmdet', ))

__all__ = ['Detectron2RetinaHead']
