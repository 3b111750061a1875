"""Compatibility fixes for the pinned stack (torch 2.13 CPU, numpy 2.4,
mmengine 0.10.7, mmdet 3.3, mmseg 1.2, mmpretrain 1.2).

Applied when ``mmmetaformer`` is imported (:func:`apply_import_time_fixes`),
because each is narrow and cannot change a result that worked before:

1. **Runner checkpoints under** ``weights_only=True``. torch >= 2.6 reads
   files with ``weights_only=True`` by default, and mmengine's checkpoint
   loader does not say otherwise, so ``load_from`` / ``resume`` fail on the
   Runner's own checkpoints: they pickle mmengine's ``HistoryBuffer`` (the
   message hub's log history), numpy arrays, scalars and dtypes.
   :func:`register_checkpoint_loaders` replaces mmengine's loaders for local
   paths and ``http(s)://`` URLs (through the public
   ``CheckpointLoader.register_scheme(..., force=True)``) by ones that still
   read with ``weights_only=True`` but allow exactly those types
   (:func:`runner_checkpoint_safe_globals`). Nothing is unpickled that could
   run code: the pickles reference ``HistoryBuffer.min``/``max``/``current``/
   ``mean`` through ``builtins.getattr``, and instead of allowing
   ``getattr`` (which would reach anything) the name is mapped to
   :func:`_history_buffer_method`, which returns only those four methods.
   No process-wide switch (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``) is used and
   pretrained backbone weights keep going through
   :mod:`mmmetaformer.checkpoint` (tensors only).
2. **numpy 2.4 removed** ``np.in1d``, which mmpretrain's retrieval metrics
   call. :func:`install_numpy_in1d` adds it back, only when it is missing,
   as ``np.isin`` on the flattened first argument (the documented
   equivalent); nothing else in numpy is touched.

Used explicitly by ``tools/train.py`` / ``tools/test.py`` (not applied at
import, because they depend on how the process is launched):

3. **Distributed training on a CPU-only torch.** mmengine's
   ``launcher='pytorch'`` calls ``torch.cuda.set_device`` and the Runner
   wraps the model in DDP with ``device_ids=[LOCAL_RANK]``, both of which
   fail without CUDA. :func:`init_cpu_distributed` initialises a ``gloo``
   process group itself (mmengine skips its own ``init_dist`` when one
   exists) and :func:`adapt_cfg_for_cpu_distributed` sets
   ``model_wrapper_cfg.device_ids=None`` and turns SyncBN into BN.
4. **CPU threads.** On a few shared cores, torch's intra-op threads in the
   main process plus busy dataloader workers oversubscribe the CPU.
   :func:`configure_cpu_threads` sets the torch thread count and caps the
   dataloader workers deliberately (see its docstring and
   ``tools/benchmarks/cpu_threads.py`` for the measurement).
"""
import datetime
import os
import subprocess
from typing import Callable, Dict, List, Mapping, Optional, Union

import numpy as np
import torch

# --------------------------------------------------------------------------
# 1. Runner checkpoints with weights_only=True
# --------------------------------------------------------------------------

#: HistoryBuffer methods that a pickled HistoryBuffer references (its
#: ``statistics_methods``). mmengine registers exactly these by default.
HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')

#: numpy scalar types whose dtype objects may appear in a Runner checkpoint
#: (values logged through the message hub, stored in HistoryBuffer arrays).
_NUMPY_DTYPE_TYPES = (np.bool_, np.int8, np.int16, np.int32, np.int64,
                      np.uint8, np.uint16, np.uint32, np.uint64, np.float16,
                      np.float32, np.float64)


def _history_buffer_method(owner, name):
    """Stand-in for ``builtins.getattr`` while unpickling a checkpoint.

    A pickled ``HistoryBuffer`` stores its statistics methods as
    ``getattr(HistoryBuffer, 'min')`` etc. Allowing the real ``getattr``
    would let a file reach any attribute of any allowed object, so only
    those lookups are answered.

    Args:
        owner: The object the pickle asks an attribute of.
        name (str): The attribute name.

    Returns:
        The ``HistoryBuffer`` method.

    Raises:
        pickle.UnpicklingError: For any other lookup.
    """
    from pickle import UnpicklingError

    from mmengine.logging import HistoryBuffer
    if owner is HistoryBuffer and name in HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise UnpicklingError(
        f'Refusing getattr({owner!r}, {name!r}) while loading a checkpoint '
        f'with weights_only=True: only HistoryBuffer.{{'
        f'{",".join(HISTORY_BUFFER_METHODS)}}} are allowed.')


def runner_checkpoint_safe_globals() -> List[Union[Callable, tuple]]:
    """The non-tensor globals that mmengine's Runner writes into checkpoints.

    Found with ``torch.serialization.get_unsafe_globals_in_checkpoint`` on
    checkpoints saved by ``Runner.train()``: ``HistoryBuffer`` (message hub),
    numpy's ``ndarray``/``_reconstruct`` (its arrays), ``dtype`` and the
    concrete dtype classes, numpy's ``scalar`` (numpy scalars in
    ``runtime_info``) and ``builtins.getattr`` (mapped to the restricted
    :func:`_history_buffer_method`). numpy < 2 wrote the same functions under
    ``numpy.core.multiarray``; those names are mapped too, so checkpoints
    from older environments load.

    Returns:
        list: Entries for ``torch.serialization.safe_globals``.
    """
    from mmengine.logging import HistoryBuffer
    multiarray = np._core.multiarray
    entries = [
        HistoryBuffer,
        np.ndarray,
        np.dtype,
        multiarray._reconstruct,
        multiarray.scalar,
        (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
        (multiarray.scalar, 'numpy.core.multiarray.scalar'),
        (_history_buffer_method, 'builtins.getattr'),
    ]
    entries += [type(np.dtype(t)) for t in _NUMPY_DTYPE_TYPES]
    return entries


def load_from_local_weights_only(filename: str, map_location=None):
    """mmengine checkpoint loader for local paths, ``weights_only=True``.

    Args:
        filename (str): Path (``~`` is expanded).
        map_location: Passed to :func:`torch.load`.

    Returns:
        The loaded object.
    """
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    with torch.serialization.safe_globals(runner_checkpoint_safe_globals()):
        return torch.load(
            filename, map_location=map_location, weights_only=True)


def _wrap_with_safe_globals(loader: Callable) -> Callable:
    """Run an mmengine loader (which calls ``torch.load`` with torch's
    default ``weights_only=True``) with the Runner types allowed."""

    def load_with_runner_types(filename, map_location=None, **kwargs):
        with torch.serialization.safe_globals(
                runner_checkpoint_safe_globals()):
            return loader(filename, map_location=map_location, **kwargs)

    load_with_runner_types.__name__ = loader.__name__
    load_with_runner_types.__doc__ = loader.__doc__
    load_with_runner_types.__wrapped__ = loader
    return load_with_runner_types


def register_checkpoint_loaders() -> None:
    """Register the ``weights_only`` loaders with mmengine's
    ``CheckpointLoader`` for local paths (prefix ``''``) and
    ``http://``/``https://`` URLs. Idempotent."""
    from mmengine.runner.checkpoint import CheckpointLoader, load_from_http
    CheckpointLoader.register_scheme(
        '', load_from_local_weights_only, force=True)
    CheckpointLoader.register_scheme(('http://', 'https://'),
                                     _wrap_with_safe_globals(load_from_http),
                                     force=True)


# --------------------------------------------------------------------------
# 2. numpy.in1d
# --------------------------------------------------------------------------


def _in1d(ar1, ar2, assume_unique=False, invert=False, *, kind=None):
    """``numpy.in1d`` as numpy < 2.4 defined it: ``np.isin`` on the
    flattened ``ar1``, returning a 1-D boolean array."""
    return np.isin(
        np.ravel(ar1),
        ar2,
        assume_unique=assume_unique,
        invert=invert,
        kind=kind)


def install_numpy_in1d() -> bool:
    """Give numpy back ``in1d`` if this numpy has removed it.

    Returns:
        bool: Whether it was added now.
    """
    if 'in1d' in vars(np):
        return False
    np.in1d = _in1d
    return True


# --------------------------------------------------------------------------
# 3. Distributed training on CPU
# --------------------------------------------------------------------------

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
# 4. CPU threads
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
    local_procs = max(1, int(os.environ.get('LOCAL_WORLD_SIZE', '1')))
    per_proc = max(1, available_cpus() // local_procs)
    if max_workers is None:
        max_workers = 0 if per_proc <= 2 else max(1, per_proc // 4)
    changes = []
    workers_used = 0
    if cfg is not None:
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
    if num_threads is None:
        num_threads = max(1, per_proc - workers_used)
    torch.set_num_threads(num_threads)
    changes.insert(0, f'torch threads={num_threads}')
    return dict(
        num_threads=num_threads, max_workers=max_workers, changes=changes)


# --------------------------------------------------------------------------


def apply_import_time_fixes() -> None:
    """Apply the fixes that are safe at import time (1 and 2 above)."""
    register_checkpoint_loaders()
    install_numpy_in1d()


apply_import_time_fixes()
