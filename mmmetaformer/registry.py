"""Registries of mmmetaformer (all of them are declared here).

Each registry is a child of the corresponding mmengine root registry with the
scope ``mmmetaformer``. That makes every module reachable as
``type='mmmetaformer.<Name>'`` from the config of any OpenMMLab library
(mmdet, mmseg, mmpretrain, ...), because mmengine resolves a scoped type by
searching the children of its root registry. ``locations`` lets mmengine
import the defining modules lazily when a scoped name is built.

* :data:`MODELS`: the backbones (``mmmetaformer.models``).
* :data:`HOOKS`: runner hooks (``mmmetaformer.engine.hooks``).
* :data:`OPTIM_WRAPPER_CONSTRUCTORS`: the layer-decay constructor
  (``mmmetaformer.engine.optimizers``).
* :data:`OPTIM_WRAPPERS`: ``CPUAmpOptimWrapper`` (mixed precision on the
  CPU, ``tools/train.py --amp``):
  ``type='mmmetaformer.CPUAmpOptimWrapper'``.

For the unscoped names in mmdet and mmseg configs (``type='PoolFormer'``,
``constructor='LayerDecayOptimWrapperConstructor'``) the modules of
:data:`MODELS` and :data:`OPTIM_WRAPPER_CONSTRUCTORS` are additionally
registered into those libraries' own registries by
:func:`mmmetaformer.models.register_into_downstream`.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import Registry

SCOPE = 'mmmetaformer'

MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope=SCOPE,
    locations=['mmmetaformer.models'])

HOOKS = Registry(
    'hook',
    parent=MMENGINE_HOOKS,
    scope=SCOPE,
    locations=['mmmetaformer.engine.hooks'])

OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope=SCOPE,
    locations=['mmmetaformer.engine.optimizers'])

OPTIM_WRAPPERS = Registry(
    'optim_wrapper',
    parent=MMENGINE_OPTIM_WRAPPERS,
    scope=SCOPE,
    locations=['mmmetaformer.engine.optimizers'])
