"""Tests of mmmetaformer.compat: each fix is exercised through the code path
that needed it (mmengine's Runner, mmpretrain's retrieval metrics, ...)."""
import importlib
import importlib.util
import os.path as osp
import pickle
import sys
import types
import uuid

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

from mmmetaformer import compat
from tests.test_tools.toy_runner import ToyRunnerDataset, ToyRunnerNet


def _runner(work_dir, max_iters, **kwargs):
    return Runner(
        model=ToyRunnerNet(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyRunnerDataset(8),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters,
                       val_interval=1000),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        randomness=dict(seed=0),
        experiment_name=f'compat_{uuid.uuid4().hex[:12]}',
        **kwargs)


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    """A checkpoint written by Runner.train() after 2 iterations, and the
    model's state at that point."""
    work_dir = tmp_path_factory.mktemp('ckpt')
    runner = _runner(work_dir, max_iters=2)
    runner.train()
    state = {k: v.clone() for k, v in runner.model.state_dict().items()}
    return work_dir / 'iter_2.pth', state


def test_runner_checkpoint_needs_the_allowlist(runner_checkpoint):
    # Precondition of the fix: torch's default weights_only=True load
    # refuses the Runner's checkpoint. If this starts to pass, the fix is
    # no longer needed.
    path, _ = runner_checkpoint
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in unsafe


def test_runner_resume(runner_checkpoint, tmp_path):
    path, state = runner_checkpoint
    # resume=True with an explicit checkpoint: continue from iteration 2.
    runner = _runner(tmp_path, max_iters=3, resume=True, load_from=str(path))
    runner.train()
    assert runner.iter == 3
    # The message hub was restored: its loss history holds the 2 resumed
    # iterations and the new one.
    loss = runner.message_hub.get_scalar('train/loss')
    assert isinstance(loss, HistoryBuffer)
    assert len(loss.data[0]) == 3


def test_runner_load_from(runner_checkpoint, tmp_path):
    path, state = runner_checkpoint
    runner = _runner(tmp_path, max_iters=2, load_from=str(path))
    runner.load_or_resume()
    loaded = runner.model.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    assert runner.iter == 0  # load_from loads weights, not the loop state


def test_runner_checkpoint_loader_refuses_other_getattr(tmp_path):
    # The pickled HistoryBuffer methods come through builtins.getattr; any
    # other getattr (here one reaching a function object, the first step
    # of a code-execution chain) must be refused.
    class Probe:

        def __reduce__(self):
            return getattr, (HistoryBuffer, '__init__')

    path = tmp_path / 'probe.pth'
    torch.save({'state_dict': {}, 'x': Probe()}, path)
    with pytest.raises(pickle.UnpicklingError, match='Refusing getattr'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')


def test_runner_checkpoint_loaders_registered():
    loader = CheckpointLoader._get_checkpoint_loader('/some/file.pth')
    assert loader is compat.load_from_local_weights_only
    http = CheckpointLoader._get_checkpoint_loader('https://x/y.pth')
    assert getattr(http, '__wrapped__', None) is not None


@pytest.fixture
def mmpretrain_retrieval():
    """mmpretrain's ``evaluation/metrics/retrieval.py``, imported without
    running the ``__init__`` of ``mmpretrain.evaluation(.metrics)``: that
    one imports every metric, and ``visual_grounding_eval`` needs
    torchvision, which does not exist for this CPU torch. The retrieval
    module itself does not use it."""
    import mmpretrain.registry
    from mmengine.registry import Registry
    spec = importlib.util.find_spec('mmpretrain')
    root = osp.dirname(spec.origin)
    before = set(sys.modules)
    # importing metric modules registers classes: undo it afterwards, or a
    # later regular import of the same modules finds them registered
    registries = [
        r for r in vars(mmpretrain.registry).values()
        if isinstance(r, Registry)
    ]
    saved = [dict(r.module_dict) for r in registries]
    for name in ('mmpretrain.evaluation', 'mmpretrain.evaluation.metrics'):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [osp.join(root, *name.split('.')[1:])]
            sys.modules[name] = package
    try:
        yield importlib.import_module(
            'mmpretrain.evaluation.metrics.retrieval')
    finally:
        for name in set(sys.modules) - before:
            if name.startswith('mmpretrain.evaluation'):
                del sys.modules[name]
        for registry, module_dict in zip(registries, saved):
            registry._module_dict.clear()
            registry._module_dict.update(module_dict)


def test_numpy_in1d_in_mmpretrain_retrieval_metrics(mmpretrain_retrieval):
    RetrievalRecall = mmpretrain_retrieval.RetrievalRecall
    RetrievalAveragePrecision = mmpretrain_retrieval.RetrievalAveragePrecision

    # 3 queries over 5 gallery items; pred are scores, target the relevant
    # gallery indices.
    pred = torch.tensor([[0.9, 0.8, 0.1, 0.2, 0.3],
                         [0.1, 0.2, 0.9, 0.3, 0.8],
                         [0.5, 0.4, 0.3, 0.2, 0.1]])
    target = [torch.tensor([1]), torch.tensor([3]), torch.tensor([4, 0])]
    # Rankings: q0 [0, 1, 4, 3, 2], q1 [2, 4, 3, 1, 0], q2 [0, 1, 2, 3, 4].
    # recall@1: q0 miss, q1 miss, q2 hit (0) -> 1/3; recall@3: q0 hit (1 at
    # rank 2), q1 hit (3 at rank 3), q2 hit -> 1.
    r1, r3 = RetrievalRecall.calculate(
        pred, target, topk=(1, 3), target_indices=True)
    assert float(r1) == pytest.approx(100 / 3)
    assert float(r3) == pytest.approx(100.0)
    # Average precision ('IR' mode: mean of precision at each hit, over the
    # number of relevant items): q0 hit at rank 2 -> 1/2; q1 hit at rank 3
    # -> 1/3; q2 hits at ranks 1 and 5 -> (1/1 + 2/5) / 2 = 0.7.
    ap = RetrievalAveragePrecision.calculate(
        pred.clone(), target, topk=5, target_indices=True, mode='IR')
    assert float(ap) == pytest.approx(100 * (1 / 2 + 1 / 3 + 0.7) / 3)


def test_numpy_in1d_semantics():
    a = np.array([[3, 1], [4, 1]])
    b = [1, 5, 9]
    np.testing.assert_array_equal(np.in1d(a, b), [False, True, False, True])
    np.testing.assert_array_equal(
        np.in1d(a, b, invert=True), [True, False, True, False])
    assert np.in1d(a, b).shape == (4, )


def test_launcher_env_slurm_and_mpi():
    env = compat._launcher_env(
        'slurm',
        dict(SLURM_PROCID='3', SLURM_NTASKS='4', SLURM_LOCALID='1',
             MASTER_ADDR='node7'))
    assert env == dict(RANK='3', WORLD_SIZE='4', LOCAL_RANK='1',
                       MASTER_PORT='29500')
    env = compat._launcher_env(
        'mpi',
        dict(OMPI_COMM_WORLD_RANK='1', OMPI_COMM_WORLD_SIZE='2',
             OMPI_COMM_WORLD_LOCAL_RANK='1', MASTER_ADDR='h',
             MASTER_PORT='1234'))
    assert env == dict(RANK='1', WORLD_SIZE='2', LOCAL_RANK='1')
    with pytest.raises(RuntimeError, match='MASTER_ADDR'):
        compat._launcher_env(
            'mpi',
            dict(OMPI_COMM_WORLD_RANK='0', OMPI_COMM_WORLD_SIZE='1',
                 OMPI_COMM_WORLD_LOCAL_RANK='0'))
    with pytest.raises(RuntimeError, match='torchrun'):
        compat._launcher_env('pytorch', dict(RANK='0'))
    with pytest.raises(ValueError, match='launcher'):
        compat.init_cpu_distributed('ray')


def test_adapt_cfg_for_cpu_distributed():
    cfg = Config(
        dict(
            model=dict(
                backbone=dict(norm_cfg=dict(type='SyncBN')),
                heads=[dict(norm_cfg=dict(type='MMSyncBN')),
                       dict(norm_cfg=dict(type='GN', num_groups=2))]),
            sync_bn='torch',
            env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    changes = compat.adapt_cfg_for_cpu_distributed(cfg)
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert cfg.model.heads[0].norm_cfg.type == 'BN'
    assert cfg.model.heads[1].norm_cfg.type == 'GN'
    assert 'sync_bn' not in cfg
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None
    assert '2 SyncBN norm config(s) -> BN' in changes

    cfg = Config(dict(model_wrapper_cfg=dict(type='MyWrapper')))
    compat.adapt_cfg_for_cpu_distributed(cfg)
    assert cfg.model_wrapper_cfg == dict(type='MyWrapper', device_ids=None)


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('cpus,local_procs,threads,workers', [
    (2, 1, 2, 0),    # 2 shared cores: data in the main process
    (2, 2, 1, 0),    # 2 processes on 2 cores: 1 thread each
    (16, 1, 12, 4),  # 16 cores: 4 workers, 12 threads
    (16, 2, 6, 2),
])
def test_configure_cpu_threads(monkeypatch, restore_threads, cpus,
                               local_procs, threads, workers):
    monkeypatch.setattr(compat.torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(compat, 'available_cpus', lambda: cpus)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', str(local_procs))
    cfg = Config(
        dict(
            train_dataloader=dict(num_workers=8, persistent_workers=True),
            val_dataloader=dict(num_workers=1, persistent_workers=True),
            test_dataloader=None))
    result = compat.configure_cpu_threads(cfg)
    assert result['num_threads'] == threads == torch.get_num_threads()
    assert cfg.train_dataloader.num_workers == workers
    assert cfg.train_dataloader.persistent_workers == (workers > 0)
    assert cfg.val_dataloader.num_workers == min(1, workers)


def test_configure_cpu_threads_explicit_and_errors(monkeypatch,
                                                   restore_threads):
    monkeypatch.setattr(compat.torch.cuda, 'is_available', lambda: False)
    cfg = Config(dict(train_dataloader=dict(num_workers=4)))
    result = compat.configure_cpu_threads(cfg, num_threads=1, max_workers=3)
    assert torch.get_num_threads() == 1 and result['max_workers'] == 3
    assert cfg.train_dataloader.num_workers == 3
    with pytest.raises(ValueError, match='num_threads'):
        compat.configure_cpu_threads(num_threads=0)
    with pytest.raises(ValueError, match='max_workers'):
        compat.configure_cpu_threads(max_workers=-1)
    monkeypatch.setattr(compat.torch.cuda, 'is_available', lambda: True)
    assert compat.configure_cpu_threads(cfg) == {}
