"""mmmetaformer.converters.scripts: the table of converter command lines
imports nothing, so that the model zoo reads it without importing the
converters (``mmmetaformer.zoo`` imported ``mmmetaformer.convert`` for it)."""
import ast
import os.path as osp

from mmmetaformer import converters
from mmmetaformer.converters import scripts
from tests.import_graph import modules_after_import
from tests.test_converters.helpers import REPO


def _imports(module):
    with open(module.__file__) as f:
        tree = ast.parse(f.read())
    return [node for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))]


def test_scripts_and_the_package_init_import_nothing_else():
    assert _imports(scripts) == []
    assert [(n.module, n.level) for n in _imports(converters)] == [
        ('scripts', 1)]


def test_every_source_format_has_its_script():
    assert set(scripts.CONVERTER_SCRIPTS) == set(scripts.SOURCE_DESCRIPTIONS)
    for path in scripts.CONVERTER_SCRIPTS.values():
        assert osp.isfile(osp.join(REPO, path)), path


def test_zoo_imports_no_converter():
    """In a fresh interpreter, ``import mmmetaformer.zoo`` loads the table
    and no converter. (torch is imported all the same: ``import
    mmmetaformer`` registers the backbones.)"""
    loaded = modules_after_import('mmmetaformer.zoo')
    assert {'mmmetaformer.zoo', 'mmmetaformer.converters.scripts'} <= loaded
    converters_loaded = sorted(
        m for m in loaded if m == 'mmmetaformer.convert'
        or m.startswith('mmmetaformer.converters.'))
    assert converters_loaded == ['mmmetaformer.converters.scripts']
