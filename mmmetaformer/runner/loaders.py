"""mmengine's checkpoint loaders for Runner checkpoints under
``weights_only=True`` (:func:`enable_safe_runner_checkpoints`, undone by
:func:`restore_runner_checkpoint_loaders`)."""
import os.path as osp
from typing import Dict

#: mmengine's checkpoint loaders as they were before
#: :func:`enable_safe_runner_checkpoints` replaced them (prefix -> loader).
_ORIGINAL_LOADERS: Dict[str, object] = {}

def load_runner_checkpoint(filename: str, map_location=None):
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
        '', load_runner_checkpoint, force=True)
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
