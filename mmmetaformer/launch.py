"""What ``tools/train.py``, ``tools/test.py`` and ``tools/reproduce.py`` do
around building an mmengine Runner (none of it happens at
``import mmmetaformer``):

* data checks -- :func:`missing_data_paths` / :func:`missing_data_message`:
  the files and folders a config's dataloaders (and evaluators) read must
  exist before a Runner is built, so that a missing dataset ends the run at
  once with a message naming the path and how to provide it;
* CPU runtime -- :func:`prepare_runtime`: a ``gloo`` process group for
  distributed launchers on a torch without CUDA
  (:func:`init_cpu_distributed`, :func:`adapt_cfg_for_cpu_distributed`) and
  deliberate threads/workers (:func:`configure_cpu_threads`);
* Runner checkpoints -- :func:`enable_safe_runner_checkpoints` (mmengine's
  ``load_from``/``resume`` under ``weights_only=True``),
  :func:`use_atomic_checkpoints` (a kill during a save never loses the
  previous checkpoint) and :func:`find_resume_checkpoint` (the newest
  complete and loadable checkpoint of a work dir);
* resume after a config change -- :func:`check_resume_config` (what
  differs from the checkpoint's config: applied, or an error naming it) and
  :func:`apply_config_on_resume` (the new schedule replayed to the resumed
  step instead of the checkpoint's schedulers);
* output directories -- :func:`check_output_dirs` (writable, space for one
  checkpoint, before training);
* run length -- :func:`rescale_run_length` (``--epochs`` / ``--iters``);
* :func:`build_runner`, which applies all of it as the tools do.

Library users who build their own Runner can opt in to the same checkpoint
handling with one call, ``mmmetaformer.launch.enable_safe_runner_checkpoints()``,
and the atomic checkpoint hook with
``default_hooks.checkpoint.type='mmmetaformer.AtomicCheckpointHook'``.
"""
import copy
import datetime
import functools
import os
import os.path as osp
import re
import shutil
import subprocess
import tempfile
import warnings
from typing import (Dict, Iterator, List, Mapping, Optional, Sequence, Tuple)

import torch
from mmengine.config import Config, DictAction

#: Where the configs define their data roots (one place, env-overridable).
PATHS_CONFIG = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', '_base_',
    'datasets', 'paths.py')


def _dataset_cfgs(node) -> Iterator[Mapping]:
    """Every dataset-like dict (one with ``data_root``, ``ann_file`` or
    ``data_prefix``) under ``node``, wrappers (RepeatDataset,
    ConcatDataset, ...) included."""
    if isinstance(node, Mapping):
        if any(k in node for k in ('data_root', 'ann_file', 'data_prefix')):
            yield node
        for key in ('dataset', 'datasets'):
            if key in node:
                yield from _dataset_cfgs(node[key])
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _dataset_cfgs(item)


def _is_remote(path: str) -> bool:
    return '://' in path


def _join(root: str, path: str) -> str:
    """Join as mmengine's ``BaseDataset`` does: relative to ``data_root``."""
    if not root or osp.isabs(path) or _is_remote(path):
        return path
    return osp.join(root, path)


def missing_data_paths(cfg, sections: Sequence[str]) -> List[Tuple[str, str]]:
    """Data files/folders a config needs that do not exist.

    For each ``<section>`` (e.g. ``'train_dataloader'``) the dataset configs
    (through wrappers) are checked: ``data_root``, ``ann_file`` (joined with
    ``data_root`` when relative) and every ``data_prefix`` entry (likewise).
    For ``val_dataloader``/``test_dataloader`` the matching evaluator's
    ``ann_file`` is checked too. Remote paths (``s3://`` etc.) are skipped.

    Args:
        cfg (mmengine.Config): The loaded config.
        sections (Sequence[str]): Dataloader keys to check.

    Returns:
        list[tuple[str, str]]: ``(config key, missing path)`` pairs.
    """
    missing = []

    def check(key: str, path: str) -> None:
        if path and not _is_remote(path) and not osp.exists(path):
            missing.append((key, path))

    for section in sections:
        loader = cfg.get(section)
        if not loader:
            continue
        for dataset in _dataset_cfgs(loader.get('dataset')):
            root = dataset.get('data_root') or ''
            where = f'{section}.dataset'
            if root and not _is_remote(root) and not osp.isdir(root):
                missing.append((f'{where}.data_root', root))
                continue  # everything below it is missing too
            ann_file = dataset.get('ann_file')
            if ann_file:
                check(f'{where}.ann_file', _join(root, ann_file))
            prefix = dataset.get('data_prefix') or {}
            if isinstance(prefix, Mapping):
                for name, value in prefix.items():
                    if isinstance(value, str) and value:
                        check(f'{where}.data_prefix.{name}',
                              _join(root, value))
        evaluator_key = section.replace('_dataloader', '_evaluator')
        evaluators = cfg.get(evaluator_key)
        if section != 'train_dataloader' and evaluators:
            if isinstance(evaluators, Mapping):
                evaluators = [evaluators]
            for i, evaluator in enumerate(evaluators):
                if isinstance(evaluator, Mapping) and evaluator.get(
                        'ann_file'):
                    check(f'{evaluator_key}.ann_file', evaluator['ann_file'])
    # The same root often appears in several sections: report each once.
    seen, unique = set(), []
    for key, path in missing:
        if path not in seen:
            seen.add(path)
            unique.append((key, path))
    return unique


def data_root_variables() -> Dict[str, str]:
    """The environment variables that ``configs/_base_/datasets/paths.py``
    reads (``'{{$VAR:default}}'`` in its assignments) and their current
    values (the variable if set, else the default)."""
    if not osp.isfile(PATHS_CONFIG):
        return {}
    found = {}
    with open(PATHS_CONFIG, encoding='utf-8') as f:
        for line in f:
            if line.lstrip().startswith('#'):
                continue
            for name, default in re.findall(r"\{\{\$(\w+):([^}]*)\}\}",
                                            line):
                found[name] = os.environ.get(name, default)
    return found


def missing_data_message(config_path: str,
                         missing: Sequence[Tuple[str, str]],
                         command: str = 'python tools/train.py') -> str:
    """The message printed when :func:`missing_data_paths` found something.

    Args:
        config_path (str): The config file, for the message.
        missing (Sequence[tuple[str, str]]): Its result.
        command (str): The command to show in the example.

    Returns:
        str: A multi-line explanation with the fix.
    """
    lines = [f'Data for {config_path} not found:']
    cwd = os.getcwd()
    for key, path in missing:
        shown = path if osp.isabs(path) else (
            f'{path} (relative to {cwd})')
        lines.append(f'  {key}: {shown}')
    variables = data_root_variables()
    # The variables whose value the missing paths start with.
    relevant = [
        name for name, value in variables.items()
        if value and any(path.startswith(value) for _, path in missing)
    ] or list(variables)
    if relevant:
        lines.append(
            'Point the configs at your copy with the environment variable '
            + ' / '.join(relevant) + ' (defined in configs/_base_/datasets/'
            'paths.py; keep the trailing slash), e.g.\n'
            f'  {relevant[0]}=/path/to/dataset/ {command} ...')
    lines.append('or override the paths with --cfg-options, e.g. '
                 f'--cfg-options {missing[0][0]}=/path/to/...')
    if 'MMMETAFORMER_DEMO_ROOT' in relevant:
        lines.append('The demo data is generated (in seconds) with '
                     'python tools/generate_demo_data.py --out '
                     f'{variables["MMMETAFORMER_DEMO_ROOT"]}')
    return '\n'.join(lines)


# --------------------------------------------------------------------------
# Distributed training on CPU
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


def drop_pretrained(model_cfg: dict) -> dict:
    """Remove every ``init_cfg=dict(type='Pretrained', ...)`` (also inside a
    list of init_cfgs) and mmseg's ``pretrained=...`` from a model config,
    in place, so that building and initialising the model downloads nothing
    (e.g. when a dense checkpoint replaces the ImageNet weights).

    Returns:
        dict: ``model_cfg``.
    """
    if isinstance(model_cfg, dict):
        if model_cfg.get('pretrained') is not None:
            model_cfg['pretrained'] = None
        init_cfg = model_cfg.get('init_cfg')
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            model_cfg['init_cfg'] = None
        elif isinstance(init_cfg, list):
            model_cfg['init_cfg'] = [
                c for c in init_cfg if c.get('type') != 'Pretrained'
            ] or None
        for value in model_cfg.values():
            drop_pretrained(value)
    elif isinstance(model_cfg, (list, tuple)):
        for item in model_cfg:
            drop_pretrained(item)
    return model_cfg


def allow_partial_pretrained(model_cfg) -> List[str]:
    """Set ``allow_partial=True`` on the ``Pretrained`` init_cfg of every
    backbone of this package in a model config, in place (``tools/train.py
    --allow-partial``: load a checkpoint that leaves many keys missing or
    unexpected, with a warning).

    Returns:
        list[str]: The changes, for printing.
    """
    from mmmetaformer.registry import MODELS
    changes = []
    if isinstance(model_cfg, (list, tuple)):
        for item in model_cfg:
            changes += allow_partial_pretrained(item)
        return changes
    if not isinstance(model_cfg, dict):
        return changes
    init_cfgs = model_cfg.get('init_cfg')
    init_cfgs = init_cfgs if isinstance(init_cfgs, list) else [init_cfgs]
    kind = model_cfg.get('type')
    ours = isinstance(kind, str) and kind.split('.')[-1] in MODELS.module_dict
    for init_cfg in init_cfgs:
        if ours and isinstance(init_cfg, dict) and init_cfg.get(
                'type') == 'Pretrained':
            init_cfg['allow_partial'] = True
            changes.append(f'{model_cfg["type"]} init_cfg.allow_partial=True '
                           '(--allow-partial)')
    for value in model_cfg.values():
        changes += allow_partial_pretrained(value)
    return changes


# --------------------------------------------------------------------------
# Runner checkpoints: weights_only loading, atomic saving, resume
# --------------------------------------------------------------------------

#: mmengine's checkpoint loaders as they were before
#: :func:`enable_safe_runner_checkpoints` replaced them (prefix -> loader).
_ORIGINAL_LOADERS: Dict[str, object] = {}


def _load_runner_checkpoint(filename: str, map_location=None):
    """mmengine checkpoint loader for local paths: ``weights_only=True``
    with the types mmengine's Runner pickles allow-listed
    (:func:`mmmetaformer.checkpoint.torch_load`).

    Args:
        filename (str): Path (``~`` is expanded).
        map_location: Passed to :func:`torch.load`.

    Returns:
        The loaded object.
    """
    from mmmetaformer.checkpoint import torch_load
    return torch_load(osp.expanduser(filename), map_location=map_location)


def _load_runner_checkpoint_http(filename: str, map_location=None, **kwargs):
    """mmengine's http(s) loader, run with the Runner's types allowed
    (:func:`mmmetaformer.checkpoint.allowed_globals`)."""
    from mmengine.runner.checkpoint import load_from_http

    from mmmetaformer.checkpoint import allowed_globals
    with allowed_globals():
        return load_from_http(filename, map_location=map_location, **kwargs)


def enable_safe_runner_checkpoints() -> None:
    """Let mmengine's ``load_from`` / ``resume`` read Runner checkpoints with
    ``weights_only=True``.

    torch >= 2.6 loads with ``weights_only=True`` by default, and the
    checkpoints mmengine's Runner writes hold a few non-tensor types
    (mmengine's ``HistoryBuffer``, numpy arrays, dtypes and scalars), so
    ``load_from`` / ``resume`` fail with ``UnpicklingError``. This registers
    loaders for local paths and ``http(s)://`` URLs with mmengine's
    ``CheckpointLoader`` (its public ``register_scheme(..., force=True)``)
    that keep ``weights_only=True`` and allow exactly those types; nothing is
    unpickled that could run code.

    It changes mmengine's loaders for the whole process, which is why
    ``import mmmetaformer`` does not do it: ``tools/train.py``,
    ``tools/test.py`` and ``tools/reproduce.py`` call it (through
    :func:`build_runner`); a library user who builds a Runner calls it once
    before ``runner.train()`` / ``runner.test()``. Idempotent;
    :func:`restore_runner_checkpoint_loaders` undoes it.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    schemes = CheckpointLoader._schemes
    if not _ORIGINAL_LOADERS:
        for prefix in ('', 'http://', 'https://'):
            _ORIGINAL_LOADERS[prefix] = schemes.get(prefix)
    CheckpointLoader.register_scheme(
        '', _load_runner_checkpoint, force=True)
    CheckpointLoader.register_scheme(('http://', 'https://'),
                                     _load_runner_checkpoint_http,
                                     force=True)


def restore_runner_checkpoint_loaders() -> None:
    """Put back the loaders :func:`enable_safe_runner_checkpoints` replaced
    (no-op if it was not called)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefix, loader in _ORIGINAL_LOADERS.items():
        if loader is None:
            CheckpointLoader._schemes.pop(prefix, None)
        else:
            CheckpointLoader._schemes[prefix] = loader
    _ORIGINAL_LOADERS.clear()


#: Checkpoint hook types that :func:`use_atomic_checkpoints` replaces.
_PLAIN_CHECKPOINT_HOOKS = ('CheckpointHook', 'mmengine.CheckpointHook')
ATOMIC_CHECKPOINT_HOOK = 'mmmetaformer.AtomicCheckpointHook'


def use_atomic_checkpoints(cfg) -> List[str]:
    """Make the config's checkpoint hook
    :class:`~mmmetaformer.engine.hooks.AtomicCheckpointHook` (same
    arguments; atomic saves, outdated checkpoints removed after the new one
    is complete).

    A config without ``default_hooks.checkpoint`` gets the Runner's default
    (``interval=1``) with the atomic hook; ``checkpoint=None`` (no
    checkpoints) and other hook types are left alone.

    Args:
        cfg (mmengine.Config): Modified in place.

    Returns:
        list[str]: What was changed, for the log.
    """
    import mmmetaformer.engine.hooks  # noqa: F401  (registers the hook)
    default_hooks = cfg.get('default_hooks')
    if default_hooks is None:
        cfg.default_hooks = default_hooks = dict()
    if 'checkpoint' not in default_hooks:
        default_hooks['checkpoint'] = dict(
            type=ATOMIC_CHECKPOINT_HOOK, interval=1)
    elif not (isinstance(default_hooks['checkpoint'], Mapping) and
              default_hooks['checkpoint'].get('type')
              in _PLAIN_CHECKPOINT_HOOKS):
        return []
    default_hooks['checkpoint']['type'] = ATOMIC_CHECKPOINT_HOOK
    return [f'default_hooks.checkpoint.type={ATOMIC_CHECKPOINT_HOOK}']


class OutputDirError(OSError):
    """A directory a training run writes to is not writable or has too
    little free space; the message names it."""


#: Per-parameter state tensors each optimizer keeps (as many bytes as the
#: parameter each); optimizers not listed are assumed to keep 2.
OPTIMIZER_STATE_SLOTS = {
    'SGD': 1, 'Adagrad': 1, 'RMSprop': 2, 'Adam': 2, 'AdamW': 2,
    'Adamax': 2, 'NAdam': 2, 'RAdam': 2, 'Lamb': 2, 'Lion': 1,
}


def estimate_checkpoint_bytes(model, optimizer_type: Optional[str]) -> int:
    """About the size of a Runner checkpoint of ``model``: its state dict
    plus the optimizer's per-parameter state (:data:`OPTIMIZER_STATE_SLOTS`
    tensors per trainable parameter).

    Args:
        model (torch.nn.Module): The model (wrappers included).
        optimizer_type (str, optional): The optimizer's type name (a
            registry scope such as ``'mmengine.'`` is ignored).

    Returns:
        int: Bytes.
    """
    name = (optimizer_type or '').rsplit('.', 1)[-1]
    slots = OPTIMIZER_STATE_SLOTS.get(name, 2)
    weights = sum(t.numel() * t.element_size()
                  for t in model.state_dict().values()
                  if isinstance(t, torch.Tensor))
    trainable = sum(p.numel() * p.element_size() for p in model.parameters()
                    if p.requires_grad)
    return weights + slots * trainable


def _writable_dir_problem(directory: str) -> Optional[str]:
    """Why files cannot be created in ``directory`` (made if missing), or
    None. A file is really created (and removed): permission bits do not
    tell a read-only mount or a full quota."""
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        return f'{type(error).__name__}: {error}'
    return None


def check_output_dirs(cfg, needed_bytes: int = 0) -> None:
    """Check, before training, that the work dir and the checkpoint
    directory (:func:`checkpoint_dir`, from ``out_dir``) can be written and
    that the checkpoint directory has ``needed_bytes`` free (one
    checkpoint, :func:`estimate_checkpoint_bytes`), so that a read-only or
    full disk stops the run now and not at the first save. Remote
    directories (``s3://``...) are not checked.

    Args:
        cfg (mmengine.Config): The run's config.
        needed_bytes (int): Free space the checkpoint directory needs.

    Raises:
        OutputDirError: Naming the directory, its config key and why.
    """
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    dirs = [('work_dir', cfg.work_dir, 0)]
    if hook is not None:
        key = 'default_hooks.checkpoint.out_dir' if isinstance(
            hook, Mapping) and hook.get('out_dir') else 'work_dir'
        dirs.append((key, checkpoint_dir(cfg), needed_bytes))
    for key, directory, needed in dirs:
        if _is_remote(directory):
            continue
        problem = _writable_dir_problem(directory)
        if problem:
            raise OutputDirError(
                f'Cannot write to {directory} ({key}): {problem}. Choose a '
                f'writable directory (--work-dir, or --cfg-options {key}=...).')
        free = shutil.disk_usage(directory).free
        if free < needed:
            raise OutputDirError(
                f'Only {free / 2**20:.1f} MiB free in {directory} ({key}); one '
                f'checkpoint needs about {needed / 2**20:.1f} MiB (weights and '
                'optimizer state). Free some space or choose another '
                f'directory (--cfg-options {key}=...).')


class ResumeError(RuntimeError):
    """Nothing (usable) to resume from; the message says where it looked."""


def checkpoint_dir(cfg) -> str:
    """The directory the config's checkpoint hook writes to: its ``out_dir``
    joined with the work dir's name (as mmengine does), else the work dir.

    Args:
        cfg (mmengine.Config): Config with ``work_dir``.

    Returns:
        str: The directory.
    """
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    work_dir = cfg.work_dir
    out_dir = hook.get('out_dir') if isinstance(hook, Mapping) else None
    if out_dir:
        return osp.join(out_dir, osp.basename(work_dir.rstrip(os.sep)))
    return work_dir


def check_runner_checkpoint(path: str) -> Optional[str]:
    """Why ``path`` cannot be resumed from, or None if it can.

    The file is read completely (``weights_only=True``, the Runner's types
    allowed), so a truncated or corrupt file is found here and not halfway
    through ``Runner.resume``.

    Args:
        path (str): A local checkpoint file.

    Returns:
        str or None: The reason (missing, empty, unreadable with the
        error, not a training checkpoint), or None.
    """
    if not osp.isfile(path):
        return 'no such file'
    if osp.getsize(path) == 0:
        return 'empty file (0 bytes)'
    try:
        ckpt = _load_runner_checkpoint(path, map_location='cpu')
    except Exception as error:  # noqa: BLE001  (any unreadable file)
        first_line = (str(error).strip().splitlines() or [''])[0][:300]
        return f'cannot be read ({type(error).__name__}: {first_line})'
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or 'iter' not in meta \
            or 'state_dict' not in ckpt:
        return ('not a training checkpoint of mmengine\'s Runner (needs '
                '"state_dict" and "meta" with "epoch"/"iter")')
    return None


def _checkpoint_name_templates(cfg) -> List[str]:
    """File-name templates of the checkpoint hook's interval checkpoints:
    its ``filename_tmpl``, else mmengine's ``epoch_{}.pth`` and
    ``iter_{}.pth``."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    tmpl = hook.get('filename_tmpl') if isinstance(hook, Mapping) else None
    return [tmpl] if tmpl else ['epoch_{}.pth', 'iter_{}.pth']


def find_resume_checkpoint(cfg) -> Tuple[str, List[Tuple[str, str]]]:
    """The newest complete and loadable interval checkpoint of a run.

    Candidates are the files in :func:`checkpoint_dir` whose names match the
    checkpoint hook's file-name template, newest step first (then newest
    modification time). Each is checked with
    :func:`check_runner_checkpoint`; the first that passes is returned.
    Temporary files of an interrupted save (``.<name>.tmp``) and failing
    candidates are returned as skipped, with the reason.

    Args:
        cfg (mmengine.Config): The run's config (``work_dir`` and
            ``default_hooks.checkpoint``).

    Returns:
        tuple[str, list[tuple[str, str]]]: The checkpoint path and the
        skipped ``(path, reason)`` pairs.

    Raises:
        ResumeError: No candidate passed; the message names the directory,
            the patterns looked for and every skipped file.
    """
    from mmmetaformer.engine.hooks.checkpoint_hook import TMP_SUFFIX
    directory = checkpoint_dir(cfg)
    templates = _checkpoint_name_templates(cfg)
    # the step is group 1
    patterns = [
        re.compile(re.escape(t).replace(r'\{\}', r'(\d+)') + '$')
        for t in templates
    ]
    candidates, skipped = [], []
    names = sorted(os.listdir(directory)) if osp.isdir(directory) else []
    for name in names:
        path = osp.join(directory, name)
        if name.startswith('.') and name.endswith(TMP_SUFFIX):
            skipped.append((path, 'incomplete save (temporary file left by '
                            'an interrupted run)'))
            continue
        for pattern in patterns:
            match = pattern.match(name)
            if match and osp.isfile(path):
                candidates.append(
                    (int(match.group(1)), osp.getmtime(path), path))
                break
    for _, _, path in sorted(candidates, reverse=True):
        reason = check_runner_checkpoint(path)
        if reason is None:
            return path, skipped
        skipped.append((path, reason))
    looked_for = ', '.join(t.replace('{}', 'N') for t in templates)
    lines = [
        f'--resume: no complete checkpoint to resume from in {directory} '
        f'(looked for {looked_for}).'
    ]
    if not osp.isdir(directory):
        lines[0] = (f'--resume: the checkpoint directory {directory} does '
                    f'not exist (looked for {looked_for}).')
    lines += [f'  skipped {path}: {reason}' for path, reason in skipped]
    lines.append('Start the run without --resume, pass the work dir of the '
                 'run to continue with --work-dir, or name a checkpoint: '
                 '--resume PATH.')
    raise ResumeError('\n'.join(lines))


# --------------------------------------------------------------------------
# Resume after a config change
# --------------------------------------------------------------------------

#: Config sections whose changes a resume applies (the training loop,
#: the optimizer settings and the schedule of the new config).
RESUME_APPLIED_SECTIONS = ('train_cfg', 'optim_wrapper', 'param_scheduler',
                           'auto_scale_lr')
#: Keys under ``model`` that a resume does not use (the weights come from
#: the checkpoint), so changing them is no difference.
_RESUME_IGNORED_MODEL_KEYS = ('init_cfg', 'pretrained')
_MISSING = '<not set>'


def _normalise(value):
    """Mappings as dicts and tuples as lists, recursively, for comparing a
    config with the one a checkpoint recorded."""
    if isinstance(value, Mapping):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value


def config_differences(old, new, where: str,
                       ignore: Sequence[str] = ()) -> List[Tuple[str, object,
                                                                 object]]:
    """Where two config values differ, key by key.

    Args:
        old: The value a checkpoint recorded.
        new: The current value.
        where (str): The key path of both (e.g. ``'model'``).
        ignore (Sequence[str]): Mapping keys skipped at any depth.

    Returns:
        list[tuple[str, object, object]]: ``(key path, old, new)``; a key
        only one side has is ``'<not set>'`` on the other.
    """
    old, new = _normalise(old), _normalise(new)
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in list(old) + [k for k in new if k not in old]:
            if key in ignore:
                continue
            found += config_differences(old.get(key, _MISSING),
                                        new.get(key, _MISSING),
                                        f'{where}.{key}', ignore)
        return found
    if isinstance(old, list) and isinstance(new, list) \
            and len(old) == len(new):
        found = []
        for i, (a, b) in enumerate(zip(old, new)):
            found += config_differences(a, b, f'{where}[{i}]', ignore)
        return found
    return [] if old == new else [(where, old, new)]


def checkpoint_config(path: str) -> Optional['Config']:
    """The config a Runner checkpoint recorded (``meta['cfg']``), or None
    when it has none (a checkpoint written by a Runner built without a
    config)."""
    text = _checkpoint_config_text(path, *_file_key(path))
    if not text:
        return None
    return Config.fromstring(text, file_format='.py')


def _file_key(path: str) -> Tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=4)
def _checkpoint_config_text(path: str, size: int, mtime_ns: int) -> str:
    """``meta['cfg']`` of a checkpoint, read once per file version (the
    size and modification time are part of the cache key)."""
    meta = _load_runner_checkpoint(path, map_location='cpu').get('meta')
    return (meta or {}).get('cfg') or ''


def resume_changes(cfg, path: str) -> Tuple[List[str], List[str]]:
    """What differs between the config a run is resumed with and the one
    its checkpoint recorded.

    Returns:
        tuple[list[str], list[str]]: The differences a resume applies
        (:data:`RESUME_APPLIED_SECTIONS`) and those it cannot apply (the
        model, the optimizer type and the optimizer's parameter groups),
        each as ``'key: old -> new'``. With no recorded config, the first
        list says so (the config's schedule is applied).
    """
    old = checkpoint_config(path)
    if old is None:
        return ['the checkpoint records no config to compare with'], []

    def lines(found):
        return [f'{key}: {a!r} -> {b!r}' for key, a, b in found]

    refused = config_differences(old.get('model'), cfg.get('model'), 'model',
                                 _RESUME_IGNORED_MODEL_KEYS)
    old_optim, new_optim = (c.get('optim_wrapper') or {} for c in (old, cfg))
    for key in ('optimizer.type', 'constructor', 'paramwise_cfg'):
        a, b = (_get_path(c, key) for c in (old_optim, new_optim))
        if key == 'paramwise_cfg':  # only its presence changes the groups
            a, b = a is not _MISSING, b is not _MISSING
        if a != b:
            refused.append((f'optim_wrapper.{key}', a, b))
    refused_keys = {key for key, _, _ in refused}
    applied = [
        d for section in RESUME_APPLIED_SECTIONS
        for d in config_differences(old.get(section, _MISSING),
                                    cfg.get(section, _MISSING), section)
        if d[0] not in refused_keys
    ]
    return lines(applied), lines(refused)


def _get_path(node, dotted: str):
    for key in dotted.split('.'):
        if not isinstance(node, Mapping) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _refused_resume_message(path: str, refused: Sequence[str]) -> str:
    return '\n'.join(
        [f'--resume {path}: the config differs from the one the checkpoint '
         'was trained with in what a resume cannot change:'] +
        [f'  {line}  (checkpoint -> now)' for line in refused] + [
            'Choose: continue the run as it was (undo these changes, e.g. '
            'with --cfg-options KEY=OLD), or start a new run from its '
            'weights with the new config: another --work-dir, no --resume, '
            f'--cfg-options load_from={path} (a fresh optimizer and '
            'schedule; weights that do not fit are reported).'])


def check_resume_config(cfg) -> Tuple[List[str], bool]:
    """Compare a resumed run's config with its checkpoint's
    (:func:`resume_changes`) before the Runner is built.

    Args:
        cfg (mmengine.Config): The final config (``resume`` and a local
            ``load_from`` set; otherwise nothing is checked).

    Returns:
        tuple[list[str], bool]: Log lines naming each applied difference,
        and whether the Runner must apply them
        (:func:`apply_config_on_resume`).

    Raises:
        ResumeError: The model, the optimizer type or its parameter groups
            changed; the message names each difference and the choices.
    """
    path = cfg.get('load_from')
    if not (cfg.get('resume') and path) or '://' in path \
            or not osp.isfile(path):
        return [], False
    applied, refused = resume_changes(cfg, path)
    if refused:
        raise ResumeError(_refused_resume_message(path, refused))
    if not applied:
        return [], False
    return ([f'--resume: the config differs from {path}\'s; the new values '
             'apply (checkpoint -> now):'] + [f'  {a}' for a in applied] + [
                 '  the optimizer settings and the schedule are this '
                 'config\'s, replayed from the start to the resumed step; the '
                 'weights and the optimizer state (momenta) are the '
                 'checkpoint\'s. To continue with the checkpoint\'s values, '
                 'undo the changes.'
             ]), True


def _optimizers(optim_wrapper) -> list:
    """The optimizer wrappers of an ``OptimWrapper`` / ``OptimWrapperDict``."""
    from mmengine.optim import OptimWrapperDict
    if isinstance(optim_wrapper, OptimWrapperDict):
        return list(optim_wrapper.values())
    return [optim_wrapper]


def _schedulers(param_schedulers) -> list:
    """The schedulers of a Runner's ``param_schedulers`` (list or dict)."""
    if isinstance(param_schedulers, Mapping):
        return [s for group in param_schedulers.values() for s in group]
    return list(param_schedulers or [])


def _schedule_state(runner) -> Tuple[list, list]:
    """The optimizer hyper-parameters (every param-group key but
    ``params``) and the scheduler states of a built Runner."""
    groups = [[{k: copy.deepcopy(v)
                for k, v in group.items() if k != 'params'}
               for group in wrapper.param_groups]
              for wrapper in _optimizers(runner.optim_wrapper)]
    states = [copy.deepcopy(s.state_dict())
              for s in _schedulers(runner.param_schedulers)]
    return groups, states


def _restore_schedule_state(runner, groups: list, states: list) -> None:
    """Put back what :func:`_schedule_state` returned, keeping the
    optimizer's per-parameter state (momenta)."""
    for wrapper, saved in zip(_optimizers(runner.optim_wrapper), groups):
        for group, values in zip(wrapper.param_groups, saved):
            for key in [k for k in group if k != 'params']:
                del group[key]
            group.update(copy.deepcopy(values))
    for scheduler, state in zip(_schedulers(runner.param_schedulers),
                                states):
        scheduler.load_state_dict(copy.deepcopy(state))


def replay_schedule(runner, epochs: int, iters: int) -> None:
    """Step a Runner's freshly built schedulers as training would have
    stepped them up to ``epochs`` finished epochs and ``iters`` iterations:
    the iteration-based ones after every iteration, the epoch-based ones
    after every epoch of ``len(train_dataloader)`` iterations (epoch-based
    loops only), as mmengine's ``ParamSchedulerHook`` does.

    Raises:
        ResumeError: A scheduler steps on validation metrics
            (``ReduceOnPlateau``), which cannot be replayed.
    """
    from mmengine.runner import EpochBasedTrainLoop
    schedulers = _schedulers(runner.param_schedulers)
    if any(getattr(s, 'need_val_args', False) for s in schedulers):
        raise ResumeError(
            'the schedule changed, and a scheduler that steps on validation '
            'metrics (ReduceOnPlateau) cannot be replayed: resume with the '
            'checkpoint\'s schedule (undo the changes).')
    per_iter = [s for s in schedulers if not s.by_epoch]
    per_epoch = [s for s in schedulers if s.by_epoch]
    epoch_length = iters
    if isinstance(runner.train_loop, EpochBasedTrainLoop):
        epoch_length = len(runner.train_dataloader)
    else:
        per_epoch, epochs = [], 0
    done = 0
    with warnings.catch_warnings():  # "scheduler.step() before optimizer"
        warnings.simplefilter('ignore')
        for epoch in range(epochs + 1):
            for _ in range(min(epoch_length, iters - done)):
                for scheduler in per_iter:
                    scheduler.step()
                done += 1
            if epoch < epochs:
                for scheduler in per_epoch:
                    scheduler.step()


def apply_config_on_resume(runner) -> None:
    """Make ``runner.resume`` continue with the Runner's own optimizer
    settings and schedule instead of the checkpoint's.

    mmengine's ``Runner.resume`` restores the optimizer's parameter groups
    (lr, weight decay, ``initial_lr``...) and every scheduler's state
    (``begin``, ``end``, ``T_max``, its step...) from the checkpoint, so a
    run resumed with a longer schedule or another lr would continue on the
    old ones. After that restore, this puts back the hyper-parameters and
    the freshly built schedulers of the new config and replays the
    schedulers up to the resumed epoch and iteration
    (:func:`replay_schedule`): the lr at every later step is the one a run
    started with the new config would have there. The weights, the
    optimizer's per-parameter state (momenta, moments) and the loop's
    position are the checkpoint's.

    Args:
        runner (mmengine.runner.Runner): A Runner that will resume; its
            ``resume`` method is replaced on this instance.
    """
    original = runner.resume

    def resume(filename, *args, **kwargs):
        groups, states = _schedule_state(runner)
        original(filename, *args, **kwargs)
        _restore_schedule_state(runner, groups, states)
        replay_schedule(runner, runner.epoch, runner.iter)
        name, values = next(iter(runner.optim_wrapper.get_lr().items()))
        runner.logger.info(
            f'the schedule of this config replayed to epoch {runner.epoch}, '
            f'iter {runner.iter}: {name} {values[0]:.6g} (first group)')

    runner.resume = resume


def resolve_resume(cfg, resume: Optional[str]) -> List[str]:
    """Set ``cfg.resume`` / ``cfg.load_from`` for a ``--resume`` argument.

    * ``None``: nothing changes (no resume);
    * ``'auto'``: the newest complete and loadable checkpoint of the run
      (:func:`find_resume_checkpoint`); nothing to resume is an error;
    * a path or URL: that checkpoint; a local file that cannot be resumed
      from is an error naming why (no silent fallback to another file).

    Args:
        cfg (mmengine.Config): Modified in place.
        resume (str, optional): The ``--resume`` value.

    Returns:
        list[str]: Log lines: the checkpoint chosen, and every file skipped
        with the reason.

    Raises:
        ResumeError: Nothing to resume from.
    """
    if resume is None:
        return []
    lines = []
    if resume == 'auto':
        path, skipped = find_resume_checkpoint(cfg)
        lines += [f'--resume: skipped {p}: {why}' for p, why in skipped]
    else:
        path = resume
        if '://' not in path:
            reason = check_runner_checkpoint(path)
            if reason is not None:
                raise ResumeError(f'--resume {path}: {reason}.')
    cfg.resume = True
    cfg.load_from = path
    lines.append(f'--resume: resuming from {path}')
    return lines


# --------------------------------------------------------------------------
# Run length (--epochs / --iters)
# --------------------------------------------------------------------------

#: Scheduler arguments counted in the scheduler's unit (epochs when
#: ``by_epoch``, else iterations).
_SCHEDULER_LENGTH_KEYS = ('begin', 'end', 'T_max', 'milestones', 'step_size',
                          'periods', 'total_steps')
#: mmengine's "until the end of training" value for ``end``.
_INF = int(1e9)


def _train_unit(cfg) -> Tuple[str, int]:
    """``('epochs', max_epochs)`` or ``('iters', max_iters)`` of
    ``cfg.train_cfg``."""
    train_cfg = cfg.get('train_cfg') or {}
    if 'max_epochs' in train_cfg:
        return 'epochs', train_cfg['max_epochs']
    if 'max_iters' in train_cfg:
        return 'iters', train_cfg['max_iters']
    raise ValueError('--epochs/--iters need train_cfg.max_epochs or '
                     'train_cfg.max_iters in the config; it has neither '
                     f'(train_cfg={dict(train_cfg)!r}).')


def _scale_length(value, old_total: int, new_total: int):
    """A length/position ``value`` of a run of ``old_total`` units in a run
    of ``new_total`` units: 0 stays 0, ``old_total`` becomes ``new_total``,
    "until the end" (>= 1e9) is kept, anything else is scaled and rounded,
    at least 1. Lists are scaled element-wise."""
    if isinstance(value, (list, tuple)):
        return type(value)(
            _scale_length(v, old_total, new_total) for v in value)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    if value == 0 or value >= _INF:
        return value
    if value == old_total:
        return new_total
    scaled = value * new_total / old_total
    return max(1, round(scaled)) if isinstance(value, int) else scaled


def rescale_run_length(cfg,
                       epochs: Optional[int] = None,
                       iters: Optional[int] = None) -> List[str]:
    """Change the length of a run and everything measured against it.

    With ``epochs`` (epoch-based configs, ``train_cfg.max_epochs``) or
    ``iters`` (iteration-based, ``train_cfg.max_iters``) = ``N`` and the
    config's length ``M``, every value counted in the same unit is scaled by
    ``N / M`` (rounded, at least 1; ``M`` itself becomes ``N``, 0 stays 0):

    * ``train_cfg``: the length, ``val_interval``, ``val_begin`` and the
      milestones of ``dynamic_intervals``;
    * each ``param_scheduler`` counted in that unit (``by_epoch=True``
      for epochs, the default; ``by_epoch=False`` for iterations): ``begin``,
      ``end``, ``T_max``, ``milestones``, ``step_size``, ``periods``,
      ``total_steps``;
    * ``default_hooks.checkpoint``: ``interval`` and ``save_begin`` when it
      counts in that unit.

    Schedulers in the other unit (an iteration-based warm-up in an
    epoch-based config) and the logger interval are kept, and the kept
    schedulers are named in the returned lines.

    Args:
        cfg (mmengine.Config): Modified in place.
        epochs (int, optional): New number of epochs.
        iters (int, optional): New number of iterations.

    Returns:
        list[str]: One line per changed or deliberately kept value.

    Raises:
        ValueError: Both or neither given, a value < 1, or the unit does not
            match the config's loop (naming the option to use).
    """
    if (epochs is None) == (iters is None):
        raise ValueError('give exactly one of --epochs and --iters')
    option, new_total = ('--epochs', epochs) if epochs is not None else (
        '--iters', iters)
    if isinstance(new_total, bool) or not isinstance(new_total, int) \
            or new_total < 1:
        raise ValueError(f'{option} must be an integer >= 1, got '
                         f'{new_total!r}')
    unit, old_total = _train_unit(cfg)
    if (unit == 'epochs') != (epochs is not None):
        other = '--iters' if unit == 'iters' else '--epochs'
        raise ValueError(
            f'{option}: this config trains for a number of {unit} '
            f'(train_cfg.max_{unit}={old_total}); use {other} N.')
    by_epoch = unit == 'epochs'
    changes = []

    def scale(owner, key: str, where: str, label: str = '') -> None:
        if key not in owner:
            return
        old = owner[key]
        new = _scale_length(old, old_total, new_total)
        if new != old:
            owner[key] = new
            changes.append(f'{where}.{key}{label} {old} -> {new}')

    train_cfg = cfg.train_cfg
    scale(train_cfg, f'max_{unit}', 'train_cfg')
    scale(train_cfg, 'val_interval', 'train_cfg')
    scale(train_cfg, 'val_begin', 'train_cfg')
    if train_cfg.get('dynamic_intervals'):
        old = train_cfg['dynamic_intervals']
        new = [(_scale_length(m, old_total, new_total),
                _scale_length(i, old_total, new_total)) for m, i in old]
        if new != [tuple(x) for x in old]:
            train_cfg['dynamic_intervals'] = new
            changes.append(f'train_cfg.dynamic_intervals {old} -> {new}')

    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, Mapping):
        schedulers = [schedulers]
    for i, scheduler in enumerate(schedulers):
        where, label = f'param_scheduler[{i}]', f' ({scheduler.get("type")})'
        if scheduler.get('by_epoch', True) != by_epoch:
            kept = ', '.join(f'{k}={scheduler[k]}'
                             for k in _SCHEDULER_LENGTH_KEYS
                             if k in scheduler)
            other_unit = 'iterations' if by_epoch else 'epochs'
            changes.append(f'{where}{label} kept: counted in {other_unit}'
                           + (f' ({kept})' if kept else ''))
            continue
        for key in _SCHEDULER_LENGTH_KEYS:
            scale(scheduler, key, where, label)

    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if isinstance(hook, Mapping):
        if hook.get('by_epoch', True) == by_epoch:
            scale(hook, 'interval', 'default_hooks.checkpoint')
            scale(hook, 'save_begin', 'default_hooks.checkpoint')
        else:
            changes.append('default_hooks.checkpoint kept: counted in '
                           + ('iterations' if by_epoch else 'epochs'))
    return [f'{option} {new_total}: {c}' for c in changes]


# --------------------------------------------------------------------------
# Building the Runner
# --------------------------------------------------------------------------


def add_cfg_options_argument(
        parser, help: str = 'override config settings, key=value') -> None:
    """Add mmengine's ``--cfg-options key=value ...`` to a tool's parser."""
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help=help)


def add_runner_arguments(parser, cfg_options_help: str) -> None:
    """Add the arguments every Runner tool shares (``config``,
    ``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local-rank``) to
    an :class:`argparse.ArgumentParser`.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        cfg_options_help (str): Help text of ``--cfg-options``.
    """
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--work-dir',
        help='where to save logs (and checkpoints when training); default: '
        'the config\'s work_dir, else ./work_dirs/<config name>')
    add_cfg_options_argument(parser, cfg_options_help)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (older: --local_rank).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_arguments(parser, argv=None):
    """Parse a tool's arguments (see :func:`add_runner_arguments`) and set
    ``LOCAL_RANK`` from ``--local-rank`` unless the launcher set it."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_tool_config(args) -> 'Config':
    """The config of a Runner tool with ``--cfg-options``, ``--launcher``
    and the work dir (``--work-dir``, else the config's, else
    ``./work_dirs/<config name>``) applied."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


class MissingDataError(FileNotFoundError):
    """The data a config needs is not on disk; the message says what to do."""


class UnconvertedCheckpointError(ValueError):
    """``load_from`` names an official dense checkpoint with old-format keys;
    the message names the converter to run."""


def build_runner(cfg, config_path: str, sections: Sequence[str],
                 launcher: str, command: str = 'python tools/train.py'):
    """Build the Runner of ``cfg`` as the tools do.

    In order: check the data of ``sections`` (:func:`missing_data_paths`),
    prepare the runtime (:func:`prepare_runtime`), check and adapt a
    training config (:func:`_before_training`: writable output directories,
    atomic checkpoints, a resume's config changes), let mmengine read Runner
    checkpoints with ``weights_only=True``
    (:func:`enable_safe_runner_checkpoints`), build the Runner
    (``runner_type`` honoured) and check a training one
    (:func:`_after_building`: the space of one checkpoint, a resume's new
    values applied, ``load_from``). What changed is printed. When a training
    run's ``load_from`` is set (and not resumed from), the file is checked
    with :func:`mmmetaformer.convert.check_load_from`: an official dense
    checkpoint with old-format keys would load non-strictly and leave the
    backbone random, so it is refused with the converter to run
    (``tools/test.py`` checks its checkpoint more strictly itself).

    Args:
        cfg (mmengine.Config): The loaded config (modified in place).
        config_path (str): The config file, for messages.
        sections (Sequence[str]): Dataloader keys whose data must exist;
            ``'train_dataloader'`` among them means a training run.
        launcher (str): The ``--launcher`` value.
        command (str): The command shown in the missing-data message.

    Returns:
        mmengine.runner.Runner: The Runner.

    Raises:
        MissingDataError: With :func:`missing_data_message` as its message,
            before anything is built.
        UnconvertedCheckpointError: ``load_from`` needs a converter first.
        OutputDirError: A directory cannot be written or lacks space.
        ResumeError: The resumed run changed what a resume cannot.
    """
    missing = missing_data_paths(cfg, sections)
    if missing:
        raise MissingDataError(
            missing_data_message(config_path, missing, command))
    training = 'train_dataloader' in sections
    changes = prepare_runtime(cfg, launcher)
    if training:
        more, apply_on_resume = _before_training(cfg)
        changes += more
    for change in changes:
        print(f'[mmmetaformer] {change}')
    enable_safe_runner_checkpoints()
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    if training:
        _after_building(runner, cfg, config_path, apply_on_resume)
    return runner


def _before_training(cfg) -> Tuple[List[str], bool]:
    """What :func:`build_runner` does to a training config before the
    Runner exists: the output directories must be writable
    (:func:`check_output_dirs`), checkpoints atomic
    (:func:`use_atomic_checkpoints`), a resumed config compared with its
    checkpoint's (:func:`check_resume_config`). Returns the log lines and
    whether the resume applies new values."""
    check_output_dirs(cfg)
    changes = use_atomic_checkpoints(cfg)
    lines, apply_on_resume = check_resume_config(cfg)
    return changes + lines, apply_on_resume


def _after_building(runner, cfg, config_path: str,
                    apply_on_resume: bool) -> None:
    """What :func:`build_runner` checks once a training Runner exists: the
    space of one checkpoint (:func:`estimate_checkpoint_bytes`), the new
    values of a changed resumed config (:func:`apply_config_on_resume`) and
    a ``load_from`` that needs a converter."""
    check_output_dirs(cfg, estimate_checkpoint_bytes(
        runner.model, _get_path(cfg, 'optim_wrapper.optimizer.type')))
    if apply_on_resume:
        apply_config_on_resume(runner)
    if cfg.get('load_from') and not cfg.get('resume'):
        from mmmetaformer.convert import check_load_from
        try:
            check_load_from(cfg.load_from, runner.model, config_path)
        except ValueError as error:
            raise UnconvertedCheckpointError(str(error)) from None
