"""Test isolation for mmengine's process-global state.

mmengine keeps the *current default scope* (``DefaultScope``) in a class-level
dict: any test that builds a Runner or calls ``init_default_scope`` leaves it
set, and every later ``Registry.build`` then switches to that scope's
registry. Each test gets the state it started with back.
"""
import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def _restore_default_scope():
    saved = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
