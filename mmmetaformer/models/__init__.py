import importlib
import importlib.util

from mmmetaformer.registry import MODELS
from .backbones import *  # noqa: F401,F403
from .backbones import __all__ as _backbone_names

# Libraries whose configs use unscoped names (``type='PoolFormer'``).
DOWNSTREAM_SCOPES = ('mmdet', 'mmseg')


def register_into_downstream(scopes=DOWNSTREAM_SCOPES) -> list:
    """Register every backbone of this package into the model registries of
    the installed libraries among ``scopes`` (default ``DOWNSTREAM_SCOPES``).

    A library that is not installed is skipped (there is nothing to register
    into); a library that is installed but fails to import raises. A name
    that already exists in a library's registry raises (mmengine's
    ``KeyError``) rather than silently replacing it.

    mmpretrain (and any other OpenMMLab library) reaches the backbones with
    the scoped name ``type='mmmetaformer.<Name>'``, through
    :data:`mmmetaformer.registry.MODELS`, a child of mmengine's root registry.

    Returns:
        list[str]: The scopes registered into.
    """
    done = []
    for scope in scopes:
        if importlib.util.find_spec(scope) is None:
            continue
        registry = importlib.import_module(f'{scope}.registry').MODELS
        for name in _backbone_names:
            cls = MODELS.module_dict.get(name)
            if cls is None:
                continue  # a base class, not a registered backbone
            if registry.module_dict.get(name) is not cls:
                registry.register_module(name=name, module=cls)
        done.append(scope)
    return done


REGISTERED_SCOPES = register_into_downstream()
