"""Registries of mmmetaformer.

``MODELS`` is a child of mmengine's root model registry with the scope
``mmmetaformer``. That makes every backbone reachable as
``type='mmmetaformer.<Name>'`` from the config of any OpenMMLab library
(mmdet, mmseg, mmpretrain, ...), because mmengine resolves a scoped type by
searching the children of its root registry.

For the unscoped names in mmdet and mmseg configs (``type='PoolFormer'``) the
backbones are additionally registered into those libraries' own registries by
:func:`mmmetaformer.models.register_into_downstream`.
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='mmmetaformer',
    locations=['mmmetaformer.models'])
