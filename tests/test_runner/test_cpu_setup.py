"""Tests of mmmetaformer.runner.cpu_setup: distributed launchers on CPU,
threads and dataloader workers."""
import pytest
import torch
from mmengine.config import Config

from mmmetaformer.runner import cpu_setup


def test_launcher_env_slurm_and_mpi():
    env = cpu_setup._launcher_env(
        'slurm',
        dict(SLURM_PROCID='3', SLURM_NTASKS='4', SLURM_LOCALID='1',
             MASTER_ADDR='node7'))
    assert env == dict(RANK='3', WORLD_SIZE='4', LOCAL_RANK='1',
                       MASTER_PORT='29500')
    env = cpu_setup._launcher_env(
        'mpi',
        dict(OMPI_COMM_WORLD_RANK='1', OMPI_COMM_WORLD_SIZE='2',
             OMPI_COMM_WORLD_LOCAL_RANK='1', MASTER_ADDR='h',
             MASTER_PORT='1234'))
    assert env == dict(RANK='1', WORLD_SIZE='2', LOCAL_RANK='1')
    with pytest.raises(RuntimeError, match='MASTER_ADDR'):
        cpu_setup._launcher_env(
            'mpi',
            dict(OMPI_COMM_WORLD_RANK='0', OMPI_COMM_WORLD_SIZE='1',
                 OMPI_COMM_WORLD_LOCAL_RANK='0'))
    with pytest.raises(RuntimeError, match='torchrun'):
        cpu_setup._launcher_env('pytorch', dict(RANK='0'))
    with pytest.raises(ValueError, match='launcher'):
        cpu_setup.init_cpu_distributed('ray')


def test_adapt_cfg_for_cpu_distributed():
    cfg = Config(
        dict(
            model=dict(
                backbone=dict(norm_cfg=dict(type='SyncBN')),
                heads=[dict(norm_cfg=dict(type='MMSyncBN')),
                       dict(norm_cfg=dict(type='GN', num_groups=2))]),
            sync_bn='torch',
            env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    changes = cpu_setup.adapt_cfg_for_cpu_distributed(cfg)
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert cfg.model.heads[0].norm_cfg.type == 'BN'
    assert cfg.model.heads[1].norm_cfg.type == 'GN'
    assert 'sync_bn' not in cfg
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None
    assert '2 SyncBN norm config(s) -> BN' in changes

    cfg = Config(dict(model_wrapper_cfg=dict(type='MyWrapper')))
    cpu_setup.adapt_cfg_for_cpu_distributed(cfg)
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
    monkeypatch.setattr(cpu_setup.torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(cpu_setup, 'available_cpus', lambda: cpus)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', str(local_procs))
    cfg = Config(
        dict(
            train_dataloader=dict(num_workers=8, persistent_workers=True),
            val_dataloader=dict(num_workers=1, persistent_workers=True),
            test_dataloader=None))
    result = cpu_setup.configure_cpu_threads(cfg)
    assert result['num_threads'] == threads == torch.get_num_threads()
    assert cfg.train_dataloader.num_workers == workers
    assert cfg.train_dataloader.persistent_workers == (workers > 0)
    assert cfg.val_dataloader.num_workers == min(1, workers)


def test_configure_cpu_threads_explicit_and_errors(monkeypatch,
                                                   restore_threads):
    monkeypatch.setattr(cpu_setup.torch.cuda, 'is_available', lambda: False)
    cfg = Config(dict(train_dataloader=dict(num_workers=4)))
    result = cpu_setup.configure_cpu_threads(cfg, num_threads=1, max_workers=3)
    assert torch.get_num_threads() == 1 and result['max_workers'] == 3
    assert cfg.train_dataloader.num_workers == 3
    with pytest.raises(ValueError, match='num_threads'):
        cpu_setup.configure_cpu_threads(num_threads=0)
    with pytest.raises(ValueError, match='max_workers'):
        cpu_setup.configure_cpu_threads(max_workers=-1)
    monkeypatch.setattr(cpu_setup.torch.cuda, 'is_available', lambda: True)
    assert cpu_setup.configure_cpu_threads(cfg) == {}
