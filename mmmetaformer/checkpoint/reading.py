"""Reading checkpoint files from outside: one reader for every file that
comes from outside (pretrained backbone weights, official dense checkpoints
given to the converters, ``reproduce``, ``tools/test.py``):
:func:`load_checkpoint_file`.

* Local files are read with ``torch.load(..., weights_only=True)``
  (:func:`torch_load`): no code from a file is ever run; the non-tensor
  objects allowed are those of :mod:`.allow_list`. ``.safetensors`` files
  (recognised by their content, whatever their name) are read with the
  ``safetensors`` package, numpy ``.npz`` files without pickles.
* URLs are downloaded once (:func:`~.cache.download`).
* Unreadable files give one :class:`~.errors.CheckpointError` naming the
  path (or URL) and what the file appears to be (:func:`~.sniff.
  describe_file`): empty, truncated zip archive, HTML page, plain text,
  gzip/tar archive, safetensors without the package.
"""
import os.path as osp
import pickle
import zipfile
from typing import Dict, Optional

import torch

from .allow_list import _refusal, allowed_globals
from .cache import download
from .errors import CheckpointError, RefusedCheckpointError
from .sniff import describe_file


def _load_safetensors(path: str, source: str, map_location) -> dict:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise CheckpointError(
            f'{source} is a safetensors file; reading it needs the '
            '`safetensors` package (pip install safetensors).') from None
    device = map_location if isinstance(map_location, str) else 'cpu'
    try:
        return load_file(path, device=device)
    except Exception as exc:
        raise CheckpointError(
            f'{source}: could not read it as a safetensors file: {exc}'
        ) from exc


def read_npz(path: str, source: Optional[str] = None
             ) -> Dict[str, torch.Tensor]:
    """Read a numpy ``.npz`` (e.g. an official Flax release) with
    ``allow_pickle=False``: ``{array name: tensor}``.

    Raises:
        CheckpointError: Naming ``source`` (default ``path``), for an
            archive that holds pickled objects or cannot be read.
    """
    import numpy as np
    source = source or path
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: torch.from_numpy(np.array(data[k])) for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        damaged = '' if isinstance(exc, ValueError) else (
            ' -- truncated or damaged? Download it again.')
        raise CheckpointError(
            f'Cannot read {source} ({osp.getsize(path)} bytes) as a numpy '
            f'.npz file without pickles: {type(exc).__name__}: {exc}'
            f'{damaged}') from exc


def check_map_location(map_location, source: str) -> None:
    """Raise a :class:`CheckpointError` naming ``map_location`` and
    ``source`` when it names a CUDA device this machine does not have."""
    if isinstance(map_location, dict):
        devices = list(map_location.values())
    elif isinstance(map_location, (str, torch.device)):
        devices = [map_location]
    else:  # None or a callable: torch decides
        return
    for device in devices:
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise CheckpointError(
                f'map_location={map_location!r} (loading {source}) is not a '
                f'device: {exc}') from None
        if device.type != 'cuda':
            continue
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise CheckpointError(
                f'map_location={map_location!r} (loading {source}): CUDA is '
                f'not available on this machine ({count} CUDA devices, torch '
                f"{torch.__version__}); use map_location='cpu'.")


def torch_load(path: str, map_location='cpu', source: Optional[str] = None):
    """Read one local file with ``weights_only=True`` and the allow-list.

    Args:
        path (str): Local file.
        map_location: Passed to :func:`torch.load`. Defaults to ``'cpu'``.
        source (str, optional): How to name the file in messages (e.g. the
            URL it was downloaded from). Defaults to ``path``.

    Returns:
        What the file holds (a dict of tensors for safetensors and numpy
        ``.npz`` files, the latter read by :func:`read_npz`).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If the file cannot be read (the message names it,
            says what it appears to be and, for refused objects, which), or
            ``map_location`` names a CUDA device the machine lacks.
    """
    source = source or path
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint file not found: {source}')
    check_map_location(map_location, source)
    kind, what = describe_file(path)
    if kind == 'npz':
        return read_npz(path, source)
    if kind == 'safetensors':
        return _load_safetensors(path, source, map_location)
    if kind == 'plain-pickle':  # never unpickled: refused like code
        raise RefusedCheckpointError(
            f'Cannot read checkpoint {source}: it is {what}.')
    if kind not in ('torch-zip', 'pickle'):
        raise CheckpointError(
            f'Cannot read checkpoint {source}: it is {what}.')
    try:
        with allowed_globals():
            return torch.load(
                path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _refusal(exc, source) from None
    except Exception as exc:  # RuntimeError, EOFError, ... from torch
        hint = (f'a device problem: map_location={map_location!r}.' if
                'device' in str(exc).lower() else
                'truncated or damaged? Download it again.')
        raise CheckpointError(
            f'Cannot read checkpoint {source} ({what}, '
            f'{osp.getsize(path)} bytes): {type(exc).__name__}: {exc} -- '
            f'{hint}') from exc


def load_checkpoint_file(filename: str, map_location='cpu') -> dict:
    """Read a checkpoint from a local path or an http(s) URL.

    URLs are downloaded once (:func:`download`); the file is read with
    :func:`torch_load`.

    Args:
        filename (str): Local path (``~`` expanded) or ``http(s)://`` URL.
        map_location: Passed to :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        dict: What the file holds.

    Raises:
        FileNotFoundError: If a local path does not exist.
        CheckpointError: If the URL or the file cannot be read (see
            :func:`download`, :func:`torch_load`).
        TypeError: If the file holds something other than a dict.
    """
    if '://' in filename:
        path = download(filename)
        source = f'{filename} (cached as {path})'
    else:
        path = source = osp.expanduser(filename)
    ckpt = torch_load(path, map_location=map_location, source=source)
    if not isinstance(ckpt, dict):
        raise TypeError(f'{source} holds a {type(ckpt).__name__}, '
                        'expected a dict (a state_dict or a container).')
    return ckpt
