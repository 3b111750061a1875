"""Where and how a training run saves: the checkpoint directory
(:func:`checkpoint_dir`), atomic checkpoints (:func:`use_atomic_checkpoints`)
and, before training, writable output directories with the space of one
checkpoint (:func:`check_output_dirs`, :func:`estimate_checkpoint_bytes`)."""
import os
import os.path as osp
import shutil
import tempfile
from typing import List, Mapping, Optional

import torch

from mmmetaformer.runner.data_checks import is_remote

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
        if is_remote(directory):
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
