"""CPU set-up before a Runner is built (:func:`prepare_runtime`): on a torch
without CUDA, a ``gloo`` process group for the distributed launchers
(:func:`init_cpu_distributed`), the config changes CPU processes need
(:func:`adapt_cfg_for_cpu_distributed`) and deliberate torch threads and
dataloader workers (:func:`configure_cpu_threads`)."""
import datetime
import os
import subprocess
from typing import Dict, List, Mapping, Optional, Tuple

import torch

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def _launcher_env(launcher: str, environ: Mapping[str, str]) -> Dict[str, str]:
    """The ``env://`` variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
    MASTER_PORT) that a launcher's own variables imply.

    Args:
        launcher (str): ``'pytorch'`` (torchrun sets them already),
            ``'slurm'`` or ``'mpi'`` (Open MPI).
        environ (Mapping): The process environment.

    Returns:
        dict: Variables to set (existing MASTER_* values are kept).
    """
    env = {}
    if launcher == 'pytorch':
        required = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                    'MASTER_PORT')
        missing = [k for k in required if k not in environ]
        if missing:
            raise RuntimeError(
                f'launcher="pytorch" needs the variables torchrun sets; '
                f'missing {missing}. Start with `torchrun --nproc_per_node '
                f'N tools/train.py CONFIG --launcher pytorch` (or '
                f'tools/dist_train.sh).')
        return env
    if launcher == 'slurm':
        env['RANK'] = environ['SLURM_PROCID']
        env['WORLD_SIZE'] = environ['SLURM_NTASKS']
        env['LOCAL_RANK'] = environ.get('SLURM_LOCALID', '0')
        if 'MASTER_ADDR' not in environ:
            env['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {environ["SLURM_NODELIST"]} '
                '| head -n1')
    elif launcher == 'mpi':
        env['RANK'] = environ['OMPI_COMM_WORLD_RANK']
        env['WORLD_SIZE'] = environ['OMPI_COMM_WORLD_SIZE']
        env['LOCAL_RANK'] = environ['OMPI_COMM_WORLD_LOCAL_RANK']
        if 'MASTER_ADDR' not in environ:
            raise RuntimeError('launcher="mpi" needs MASTER_ADDR to be set.')
    else:
        raise ValueError(f'launcher must be one of {LAUNCHERS[1:]} for '
                         f'distributed training, got {launcher!r}')
    if 'MASTER_PORT' not in environ:
        env['MASTER_PORT'] = '29500'
    return env


def init_cpu_distributed(launcher: str,
                         timeout: Optional[float] = None) -> bool:
    """Initialise a ``gloo`` process group when torch has no CUDA.

    mmengine's Runner skips its own ``init_dist`` (which calls
    ``torch.cuda.set_device``) when a process group exists, so calling this
    before ``Runner.from_cfg`` makes ``--launcher pytorch|slurm|mpi`` work on
    CPU. With CUDA available, or ``launcher='none'``, it does nothing and the
    Runner initialises as usual.

    Args:
        launcher (str): One of ``'none'``, ``'pytorch'``, ``'slurm'``,
            ``'mpi'``.
        timeout (float, optional): Process-group timeout in seconds.

    Returns:
        bool: Whether this call initialised a CPU process group.
    """
    import torch.distributed as dist
    if launcher not in LAUNCHERS:
        raise ValueError(
            f'launcher must be one of {LAUNCHERS}, got {launcher!r}')
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if dist.is_initialized():
        return False
    os.environ.update(_launcher_env(launcher, os.environ))
    kwargs = {}
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    dist.init_process_group(backend='gloo', init_method='env://', **kwargs)
    return True


def _replace_sync_bn(node) -> int:
    """Replace SyncBN norm configs by BN in place; returns the count."""
    count = 0
    if isinstance(node, Mapping):
        if node.get('type') in ('SyncBN', 'MMSyncBN', 'TorchSyncBN'):
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += _replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _replace_sync_bn(value)
    return count


def adapt_cfg_for_cpu_distributed(cfg) -> List[str]:
    """Make a distributed config run on CPU processes (gloo).

    * ``model_wrapper_cfg``: ``device_ids=None`` (DDP rejects device ids
      for CPU modules); created as ``MMDistributedDataParallel`` with the
      Runner's defaults (``broadcast_buffers=False``, the config's
      ``find_unused_parameters``) if the config has none;
    * every ``SyncBN``/``MMSyncBN`` norm config becomes ``BN`` and
      ``cfg.sync_bn`` is dropped (synchronised BN needs CUDA);
    * ``env_cfg.dist_cfg.backend`` becomes ``'gloo'``.

    Args:
        cfg (mmengine.Config): Modified in place.

    Returns:
        list[str]: What was changed, for the log.
    """
    changes = []
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
            device_ids=None)
    else:
        wrapper['device_ids'] = None
    changes.append('model_wrapper_cfg.device_ids=None')
    n = _replace_sync_bn(cfg._cfg_dict)
    if n:
        changes.append(f'{n} SyncBN norm config(s) -> BN')
    if cfg.get('sync_bn') is not None:
        cfg.pop('sync_bn')
        changes.append('dropped cfg.sync_bn')
    env_cfg = cfg.setdefault('env_cfg', dict())
    dist_cfg = env_cfg.setdefault('dist_cfg', dict())
    if dist_cfg.get('backend', 'gloo') != 'gloo':
        dist_cfg['backend'] = 'gloo'
        changes.append('env_cfg.dist_cfg.backend=gloo')
    return changes


# --------------------------------------------------------------------------
# CPU threads
# --------------------------------------------------------------------------


def available_cpus() -> int:
    """CPUs this process may run on (affinity mask, else ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure_cpu_threads(cfg=None,
                          num_threads: Optional[int] = None,
                          max_workers: Optional[int] = None) -> dict:
    """Choose torch threads and dataloader workers for CPU training/testing.

    Does nothing when CUDA is available. Otherwise, with ``P`` = the CPUs
    available to this process divided by the number of local distributed
    processes (``LOCAL_WORLD_SIZE``), at least 1:

    * dataloader workers: at most ``max_workers``, default 0 when ``P <= 2``
      (the data is loaded in the main process, between the model's steps),
      else ``max(1, P // 4)``; ``persistent_workers`` is turned off where
      the workers become 0;
    * torch intra-op threads: ``num_threads``, default ``P`` minus the
      workers the config ends up with (at least 1), so that model threads
      and workers together do not exceed the CPUs.

    On 2 shared cores, a config's 2 workers next to 2 torch threads made a
    training step several times slower than 0 workers (figures:
    ``tools/benchmarks/cpu_threads.py``).

    Args:
        cfg (mmengine.Config, optional): Config whose ``train_dataloader``,
            ``val_dataloader`` and ``test_dataloader`` are capped, in place.
        num_threads (int, optional): torch intra-op threads.
        max_workers (int, optional): Maximum dataloader workers.

    Returns:
        dict: ``num_threads``, ``max_workers`` and ``changes`` (list of str);
        empty when CUDA is available.
    """
    if num_threads is not None and num_threads < 1:
        raise ValueError(f'num_threads must be >= 1, got {num_threads}')
    if max_workers is not None and max_workers < 0:
        raise ValueError(f'max_workers must be >= 0, got {max_workers}')
    if torch.cuda.is_available():
        return {}
    per_proc = cpus_per_process()
    if max_workers is None:
        max_workers = 0 if per_proc <= 2 else max(1, per_proc // 4)
    changes, workers_used = [], 0
    if cfg is not None:
        changes, workers_used = cap_dataloader_workers(cfg, max_workers)
    if num_threads is None:
        num_threads = max(1, per_proc - workers_used)
    torch.set_num_threads(num_threads)
    changes.insert(0, f'torch threads={num_threads}')
    return dict(
        num_threads=num_threads, max_workers=max_workers, changes=changes)


def cpus_per_process() -> int:
    """The CPUs available to this process (:func:`available_cpus`) divided
    by the number of local distributed processes (``LOCAL_WORLD_SIZE``), at
    least 1."""
    local_procs = max(1, int(os.environ.get('LOCAL_WORLD_SIZE', '1')))
    return max(1, available_cpus() // local_procs)


def cap_dataloader_workers(cfg, max_workers: int) -> Tuple[List[str], int]:
    """Cap ``num_workers`` of the config's train/val/test dataloaders at
    ``max_workers``, in place (``persistent_workers`` off where the workers
    become 0).

    Returns:
        tuple[list[str], int]: What was changed, and the most workers a
        dataloader of the config ends up with.
    """
    changes = []
    workers_used = 0
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        workers = loader.get('num_workers', 0)
        if workers > max_workers:
            loader['num_workers'] = max_workers
            changes.append(f'{key}.num_workers {workers}->{max_workers}')
            if max_workers == 0 and loader.get('persistent_workers'):
                loader['persistent_workers'] = False
        workers_used = max(workers_used, loader['num_workers'] if
                           'num_workers' in loader else 0)
    return changes, workers_used


# --------------------------------------------------------------------------
# Runtime preparation
# --------------------------------------------------------------------------


def prepare_runtime(cfg, launcher: str) -> List[str]:
    """Apply the CPU-specific fixes to a config before the Runner is built.

    On a torch without CUDA: a gloo process group for distributed launchers
    (:func:`init_cpu_distributed`), the matching config changes
    (:func:`adapt_cfg_for_cpu_distributed`) and deliberate threads/workers
    (:func:`configure_cpu_threads`). With CUDA, nothing changes.

    Args:
        cfg (mmengine.Config): Modified in place.
        launcher (str): The ``--launcher`` value.

    Returns:
        list[str]: What was changed, for the log.
    """
    changes = []
    if launcher != 'none' and not torch.cuda.is_available():
        if init_cpu_distributed(launcher):
            changes.append('initialised a gloo process group (CPU)')
        changes += adapt_cfg_for_cpu_distributed(cfg)
    changes += configure_cpu_threads(cfg).get('changes', [])
    return changes
