"""Tests of mmmetaformer.runner.data_checks (the checks themselves run
through tools/train.py in tests/test_tools/test_train_tools.py)."""
import importlib.util
import os.path as osp

from mmmetaformer.runner import data_checks


def test_paths_config_is_this_checkout_s_file():
    # The module sits one folder below the package: the path must still
    # name the configs beside the package, and they define the data roots.
    path = data_checks.PATHS_CONFIG
    suffix = osp.join('configs', '_base_', 'datasets', 'paths.py')
    assert path.endswith(suffix)
    root = path[:-len(suffix)]
    package = importlib.util.find_spec('mmmetaformer').origin
    assert osp.normpath(package) == osp.normpath(
        osp.join(root, 'mmmetaformer', '__init__.py'))
    assert osp.isfile(path)
    assert 'MMMETAFORMER_DEMO_ROOT' in data_checks.data_root_variables()
