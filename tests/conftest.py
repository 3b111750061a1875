"""Test isolation for mmengine's process-global state.

mmengine keeps the *current default scope* (``DefaultScope``) in a class-level
dict: building a Runner or calling ``init_default_scope`` leaves it set, and
every later ``Registry.build`` then switches to that scope's registry. Each
test starts with no default scope (tests that need one set it), and whatever
was there before (e.g. set by a module-scoped fixture) is put back after.
"""
import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def _isolated_default_scope():
    saved = DefaultScope._instance_dict.copy()
    DefaultScope._instance_dict.clear()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
