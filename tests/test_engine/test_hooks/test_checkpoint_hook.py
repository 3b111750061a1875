"""AtomicCheckpointHook: every checkpoint appears complete under its final
name, and an outdated one is removed only after the new one is complete."""
import os

import pytest
from mmengine.fileio.backends import LocalBackend

from mmmetaformer.engine.hooks import AtomicCheckpointHook
from mmmetaformer.engine.hooks.checkpoint_hook import (temporary_name,
                                                       write_text_atomic)
from tests.test_tools.toy_runner import build_toy_runner


def _train(work_dir, checkpoint_hook, max_iters=6, **kwargs):
    runner = build_toy_runner(work_dir, max_iters, checkpoint_hook, **kwargs)
    runner.train()
    return runner


@pytest.fixture
def recorded_writes(monkeypatch):
    """Every checkpoint file write: (file written, .pth files that existed
    in its directory at that moment)."""
    writes = []
    original = LocalBackend.put

    def put(backend, obj, filepath):
        directory = os.path.dirname(str(filepath))
        existing = sorted(n for n in os.listdir(directory)
                          if n.endswith('.pth'))
        writes.append((os.path.basename(str(filepath)), existing))
        return original(backend, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put)
    return writes


def test_outdated_checkpoint_removed_after_the_new_one(
        tmp_path, recorded_writes):
    _train(tmp_path,
           dict(type='mmmetaformer.AtomicCheckpointHook', interval=2,
                by_epoch=False, max_keep_ckpts=1))
    # Each checkpoint is written under a temporary name while the previous
    # one still exists (mmengine's CheckpointHook removes it first).
    assert recorded_writes == [
        ('.iter_2.pth.tmp', []),
        ('.iter_4.pth.tmp', ['iter_2.pth']),
        ('.iter_6.pth.tmp', ['iter_4.pth']),
    ]
    names = os.listdir(tmp_path)
    assert [n for n in names if n.endswith('.pth')] == ['iter_6.pth']
    assert not [n for n in names if n.startswith('.')]  # no temporary left
    assert (tmp_path / 'last_checkpoint').read_text() == str(
        tmp_path / 'iter_6.pth')


def test_keeps_as_many_as_asked_and_resumes(tmp_path):
    from mmmetaformer import launch
    hook = dict(type=AtomicCheckpointHook, interval=2, by_epoch=False,
                max_keep_ckpts=2)
    _train(tmp_path, hook, max_iters=6)
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth')) \
        == ['iter_4.pth', 'iter_6.pth']
    # The kept list is saved in the checkpoint as mmengine's hook saves it.
    launch.enable_safe_runner_checkpoints()
    try:
        runner = _train(tmp_path, hook, max_iters=8, resume=True,
                        load_from=str(tmp_path / 'iter_6.pth'))
    finally:
        launch.restore_runner_checkpoint_loaders()
    assert runner.iter == 8
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth')) \
        == ['iter_6.pth', 'iter_8.pth']


def test_write_text_atomic(tmp_path):
    path = tmp_path / 'last_checkpoint'
    write_text_atomic(str(path), 'a')
    write_text_atomic(str(path), 'b')
    assert path.read_text() == 'b'
    assert os.listdir(tmp_path) == ['last_checkpoint']
    assert temporary_name('iter_2.pth') == '.iter_2.pth.tmp'


def test_disk_full_during_a_save_names_the_file_and_cleans_up(
        tmp_path, monkeypatch):
    """ENOSPC in the middle of the second save: the error names the
    checkpoint, the part-written temporary file is gone, the previous
    checkpoint is intact (the old code raised a bare `[Errno 28]` and left
    the temporary file on the full disk)."""
    import errno

    from mmmetaformer import launch
    original = LocalBackend.put
    writes = []

    def put(backend, obj, filepath):
        writes.append(str(filepath))
        if len(writes) < 2:
            return original(backend, obj, filepath)
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(LocalBackend, 'put', put)
    with pytest.raises(OSError) as info:  # CheckpointSaveError
        _train(tmp_path,
               dict(type='mmmetaformer.AtomicCheckpointHook', interval=2,
                    by_epoch=False, max_keep_ckpts=1))
    tmp_file = tmp_path / temporary_name('iter_4.pth')
    assert writes[1] == str(tmp_file)
    assert type(info.value).__name__ == 'CheckpointSaveError'
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert f'Could not save the checkpoint {tmp_path / "iter_4.pth"}: No ' \
        'space left on device (errno 28, ' in message
    assert f'MiB free in {tmp_path}); its temporary file {tmp_file} was ' \
        'removed. The previous checkpoints are kept' in message
    assert sorted(n for n in os.listdir(tmp_path) if 'pth' in n) == [
        'iter_2.pth'
    ]
    assert launch.check_runner_checkpoint(str(tmp_path / 'iter_2.pth')) \
        is None
