"""Tests of mmmetaformer.runner.loaders: Runner checkpoints read by
mmengine's Runner itself (resume, load_from) under weights_only=True."""
import pickle

import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from mmmetaformer.checkpoint import CheckpointError
from mmmetaformer.runner import loaders
from tests.test_runner.utils import interval_checkpoint_runner


def test_runner_checkpoint_needs_the_allowlist(runner_checkpoint):
    # Precondition of the fix: torch's default weights_only=True load
    # refuses the Runner's checkpoint. If this starts to pass, the fix is
    # no longer needed.
    path, _ = runner_checkpoint
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in unsafe


@pytest.fixture
def safe_loaders():
    """mmengine's checkpoint loaders replaced by
    loaders.enable_safe_runner_checkpoints for the test, put back after."""
    loaders.enable_safe_runner_checkpoints()
    yield
    loaders.restore_runner_checkpoint_loaders()


def test_runner_resume(runner_checkpoint, tmp_path, safe_loaders):
    path, state = runner_checkpoint
    # resume=True with an explicit checkpoint: continue from iteration 2.
    runner = interval_checkpoint_runner(tmp_path, max_iters=3, resume=True,
                                        load_from=str(path))
    runner.train()
    assert runner.iter == 3
    # The message hub was restored: its loss history holds the 2 resumed
    # iterations and the new one.
    loss = runner.message_hub.get_scalar('train/loss')
    assert isinstance(loss, HistoryBuffer)
    assert len(loss.data[0]) == 3


def test_runner_load_from(runner_checkpoint, tmp_path, safe_loaders):
    path, state = runner_checkpoint
    runner = interval_checkpoint_runner(tmp_path, max_iters=2,
                                        load_from=str(path))
    runner.load_or_resume()
    loaded = runner.model.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    assert runner.iter == 0  # load_from loads weights, not the loop state


def test_runner_checkpoint_loader_refuses_other_getattr(tmp_path,
                                                        safe_loaders):
    # The pickled HistoryBuffer methods come through builtins.getattr; any
    # other getattr (here one reaching a function object, the first step
    # of a code-execution chain) must be refused.
    class Probe:

        def __reduce__(self):
            return getattr, (HistoryBuffer, '__init__')

    path = tmp_path / 'probe.pth'
    torch.save({'state_dict': {}, 'x': Probe()}, path)
    with pytest.raises(CheckpointError, match='Refused to read'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')


def test_safe_runner_checkpoints_opt_in_and_restore(runner_checkpoint):
    path, _ = runner_checkpoint
    before = dict(CheckpointLoader._schemes)
    # Without the opt-in, mmengine's own loader refuses the Runner's file
    # (torch's weights_only default): nothing was changed at import.
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    loaders.enable_safe_runner_checkpoints()
    loaders.enable_safe_runner_checkpoints()  # idempotent
    try:
        assert CheckpointLoader._get_checkpoint_loader(
            '/some/file.pth') is loaders.load_runner_checkpoint
        assert CheckpointLoader._get_checkpoint_loader(
            'https://x/y.pth') is loaders._load_runner_checkpoint_http
        ckpt = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
        assert ckpt['meta']['iter'] == 2
    finally:
        loaders.restore_runner_checkpoint_loaders()
    assert CheckpointLoader._schemes == before
