"""Every family trains one step for every ``frozen_stages`` in {-1, 0, 1,
last} x ``with_cp`` in {False, True} without crashing the interpreter:
``frozen_stages=0`` used to kill the process with SIGSEGV for the families
with ``GroupNorm1`` (PyTorch's CPU group_norm backward on a channels-last
input without gradient). One fresh interpreter per family
(``tests.crash_guard``), so a crash fails this test with its name."""
import pytest

from tests.crash_guard import run_guarded
from .tiny_archs import ALL_TINY_ARCHS

MODULE = 'tests.test_models.test_backbones.training_matrix'


@pytest.mark.parametrize('name', sorted(ALL_TINY_ARCHS))
def test_every_frozen_stages_and_with_cp_trains(name):
    out = run_guarded(f'{MODULE}:train', name)
    assert f'{name}: all combinations trained' in out
