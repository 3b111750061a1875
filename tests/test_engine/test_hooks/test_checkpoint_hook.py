"""AtomicCheckpointHook: every checkpoint appears complete under its final
name, and an outdated one is removed only after the new one is complete."""
import os
import uuid

import pytest
from mmengine.fileio.backends import LocalBackend
from mmengine.runner import Runner

from mmmetaformer.engine.hooks import AtomicCheckpointHook
from mmmetaformer.engine.hooks.checkpoint_hook import (temporary_name,
                                                       write_text_atomic)
from tests.test_tools.toy_runner import ToyRunnerDataset, ToyRunnerNet


def _train(work_dir, checkpoint_hook, max_iters=6):
    runner = Runner(
        model=ToyRunnerNet(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyRunnerDataset(8),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters,
                       val_interval=1000),
        default_hooks=dict(checkpoint=checkpoint_hook),
        randomness=dict(seed=0),
        experiment_name=f'hook_{uuid.uuid4().hex[:12]}')
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
    files = sorted(n for n in os.listdir(tmp_path)
                   if os.path.isfile(tmp_path / n))
    assert files == ['iter_6.pth', 'last_checkpoint']  # no temporary left
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
        runner = Runner(
            model=ToyRunnerNet(),
            work_dir=str(tmp_path),
            train_dataloader=dict(
                dataset=ToyRunnerDataset(8),
                sampler=dict(type='DefaultSampler', shuffle=False),
                batch_size=2, num_workers=0,
                collate_fn=dict(type='pseudo_collate')),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
            train_cfg=dict(by_epoch=False, max_iters=8, val_interval=1000),
            default_hooks=dict(checkpoint=hook),
            resume=True,
            load_from=str(tmp_path / 'iter_6.pth'),
            experiment_name=f'hook_{uuid.uuid4().hex[:12]}')
        runner.train()
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
