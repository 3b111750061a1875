"""Import stand-in for ``torchvision``, for the speed suite's timm peer only.

timm imports torchvision at module level (data transforms, datasets, a frozen
BatchNorm), and there is no CPU build of torchvision for the torch this
package pins. The timm MetaFormer models that the suite times use nothing
from it. This stand-in lets ``import timm`` succeed: every
``torchvision.<sub>`` module is created on import, and every name looked up
in one is a placeholder class whose attributes are placeholders too (so
``InterpolationMode.BILINEAR`` or ``class X(transforms.RandomCrop)`` at
module level work). Calling or instantiating a placeholder raises, so
nothing that really needs torchvision can silently compute something else.

``tools/benchmarks/peers.py`` puts the directory that holds this package on
``sys.path`` only when no real torchvision is importable, and only in the
benchmark process. It is not part of the ``mmmetaformer`` package and is
never installed.
"""
import importlib.abc
import importlib.machinery
import sys
import types

__version__ = '0.0.0+mmmetaformer.benchmark.stand-in'


class _PlaceholderMeta(type):
    """Attribute lookups on a placeholder class give more placeholders."""

    def __getattr__(cls, name):
        if name.startswith('__'):
            raise AttributeError(name)
        return _placeholder(f'{cls.__qualname__}.{name}', cls.__module__)

    def __call__(cls, *args, **kwargs):
        raise RuntimeError(
            f'{cls.__module__}.{cls.__qualname__} needs the real torchvision;'
            ' only an import stand-in is present (tools/benchmarks/_stubs, '
            'for the speed suite).')


def _placeholder(qualname, module):
    cls = _PlaceholderMeta(qualname.rsplit('.', 1)[-1], (), {})
    cls.__qualname__ = qualname
    cls.__module__ = module
    return cls


def _module_getattr(module_name):

    def __getattr__(name):
        if name.startswith('__'):
            raise AttributeError(name)
        return _placeholder(name, module_name)

    return __getattr__


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Creates any ``torchvision.<sub>`` module on import."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith(__name__ + '.'):
            return importlib.machinery.ModuleSpec(
                fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__getattr__ = _module_getattr(spec.name)
        return module

    def exec_module(self, module):
        parent, _, child = module.__name__.rpartition('.')
        setattr(sys.modules[parent], child, module)


sys.meta_path.append(_Finder())
__getattr__ = _module_getattr(__name__)
