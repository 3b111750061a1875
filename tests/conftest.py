"""Test isolation for mmengine's process-global state, and the disk.

mmengine keeps the *current default scope* (``DefaultScope``) in a class-level
dict: building a Runner or calling ``init_default_scope`` leaves it set, and
every later ``Registry.build`` then switches to that scope's registry. Each
test starts with no default scope (tests that need one set it), and whatever
was there before (e.g. set by a module-scoped fixture) is put back after.

The ``tmp_path`` of a passed test is deleted when the test ends: parity and
converter tests write full-size checkpoints, and pytest keeps every test's
directory of the last three sessions (a whole main-suite run left 15 GB in
``/tmp/pytest-of-<user>``, the minimal environment's 8.6 GB). A failed
test's directory stays for inspection.
"""
import shutil

import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def _isolated_default_scope():
    saved = DefaultScope._instance_dict.copy()
    DefaultScope._instance_dict.clear()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == 'call':
        item.passed_call = report.passed


@pytest.fixture(autouse=True)
def _drop_tmp_path_of_passed_test(request):
    path = request.getfixturevalue('tmp_path') \
        if 'tmp_path' in request.fixturenames else None
    yield
    if path is not None and getattr(request.node, 'passed_call', False):
        shutil.rmtree(path, ignore_errors=True)
