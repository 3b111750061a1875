"""The models of mmmetaformer and their registration into mmdet and mmseg.

Importing this package registers every backbone into
:data:`mmmetaformer.registry.MODELS` (scoped names,
``type='mmmetaformer.PoolFormer'``, usable from any OpenMMLab library) and,
through :func:`register_into_downstream`, under the unscoped names used by
mmdet and mmseg configs.
"""
import importlib
import importlib.util
import warnings

from mmmetaformer import registry as _registry
from .backbones import *  # noqa: F401,F403

# Libraries whose configs use unscoped names (``type='PoolFormer'``).
DOWNSTREAM_SCOPES = ('mmdet', 'mmseg')

# (name of the registry in ``<library>.registry``, our registry). Importing
# ``mmmetaformer.engine`` below fills OPTIM_WRAPPER_CONSTRUCTORS.
REGISTRIES = (('MODELS', _registry.MODELS),
              ('OPTIM_WRAPPER_CONSTRUCTORS',
               _registry.OPTIM_WRAPPER_CONSTRUCTORS))


def register_into_downstream(scopes=DOWNSTREAM_SCOPES) -> list:
    """Register every module of this package's registries (models and
    optimizer-wrapper constructors, see :data:`REGISTRIES`) into the
    corresponding registries of the installed libraries among ``scopes``
    (default ``DOWNSTREAM_SCOPES``).

    The modules are taken from the registries themselves, so every
    registered class gets its downstream name (whether or not a package
    ``__all__`` lists it).

    * A library that is not installed is skipped (nothing to register into).
    * A library that is installed but fails to import (a broken install, an
      mmcv version it rejects, ...) is skipped with one ``RuntimeWarning``
      naming the library and its error, so that ``import mmmetaformer`` still
      works for the other libraries.
    * A name that already exists in a library's registry with another class
      raises (mmengine's ``KeyError``) rather than silently replacing it.

    mmpretrain (and any other OpenMMLab library) reaches the modules with the
    scoped name ``type='mmmetaformer.<Name>'``, through the registries of
    :mod:`mmmetaformer.registry`, children of mmengine's root registries.

    Args:
        scopes (Sequence[str]): Names of the libraries to register into.

    Returns:
        list[str]: The scopes registered into.
    """
    from mmmetaformer import engine  # noqa: F401  (fills the constructors)
    done = []
    for scope in scopes:
        if importlib.util.find_spec(scope) is None:
            continue
        try:
            downstream = importlib.import_module(f'{scope}.registry')
        except Exception as error:  # a broken install of another library
            warnings.warn(
                f'mmmetaformer: {scope} is installed but "import '
                f'{scope}.registry" fails ({type(error).__name__}: {error}); '
                f'the backbones are not registered under unscoped names in '
                f'{scope} (the scoped names "mmmetaformer.<Name>" still '
                f'work). Fix or uninstall {scope} to silence this warning.',
                RuntimeWarning,
                stacklevel=2)
            continue
        for registry_name, ours in REGISTRIES:
            theirs = getattr(downstream, registry_name)
            for name, cls in ours.module_dict.items():
                if theirs.module_dict.get(name) is not cls:
                    theirs.register_module(name=name, module=cls)
        done.append(scope)
    return done


REGISTERED_SCOPES = register_into_downstream()
