"""Load a script of ``tools/`` as a module (``tools`` is not a package)."""
import importlib.util
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(path: str, name: str = None):
    """``tools/<path>`` (e.g. ``'benchmarks/speed.py'``) executed as a fresh
    module called ``name`` (default: the file's stem)."""
    full = osp.join(REPO, 'tools', path)
    name = name or osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, full)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
