"""Reading checkpoint files from outside and loading them with a report.

One reader for every file that comes from outside (pretrained backbone
weights, official dense checkpoints given to the converters, ``reproduce``,
``tools/test.py``): :func:`load_checkpoint_file`.

* **Local files** are read with ``torch.load(..., weights_only=True)``: no
  code from a file is ever run. The only non-tensor objects allowed are the
  ones mmengine's Runner and single-GPU mmdet 2.x / mmseg 0.x runs store
  next to the weights (:func:`runner_safe_globals`): ``HistoryBuffer`` (with
  a ``getattr`` that answers only its four statistics methods), numpy
  arrays, scalars and dtypes (under numpy 1.x ``numpy.core`` and numpy 2.x
  ``numpy._core`` names) and ``argparse.Namespace`` (DeiT-style training
  scripts). ``.safetensors`` files (recognised by their content, whatever
  their name) are read with the ``safetensors`` package.
* **torch versions.** The allow-list uses
  ``torch.serialization.safe_globals`` (torch >= 2.5) or
  ``add_safe_globals`` (2.4, restored afterwards). Entries that map a
  name written by another numpy version, and ``builtins.getattr``, need
  torch >= 2.6 (``(object, 'module.name')`` entries); older versions allow
  the objects under their own names only. torch < 2.4 has no allow-list
  API: files that hold nothing but tensors and plain containers load, files
  with numpy or mmengine objects are refused with an error that says so
  (load them once with torch >= 2.6 and save their ``state_dict``).
* **URLs** (``http://``, ``https://``) are downloaded once into
  :func:`checkpoint_cache_dir` under ``<sha256(url)[:16]>-<file name>``:
  two URLs never share a cached file, even when their file names are equal
  (every Hugging Face repository names its file ``model.safetensors``). A
  hash in the file name (``name-<sha256 prefix>.pth``, the torch hub /
  OpenMMLab convention) is verified before the file is kept. Downloads are
  written to a temporary file in the cache directory and renamed when
  complete and verified.
* **Unreadable files** give one :class:`CheckpointError` naming the path
  (or URL) and what the file appears to be: empty, truncated zip archive,
  HTML page, plain text, gzip/tar archive, safetensors without the package.
"""
import argparse
import contextlib
import hashlib
import importlib
import os
import os.path as osp
import pickle
import re
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import (Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple, Union)
from urllib.parse import urlparse

import torch
import torch.nn as nn

#: Fraction of a module's tensors that a checkpoint must fill; below it
#: :func:`load_state_dict_with_report` raises (0 loaded tensors always does).
MIN_LOADED_FRACTION = 0.5

#: Missing (beyond the expected ones) plus unexpected keys, as a fraction of
#: a module's tensors, above which a load is partial: refused unless
#: ``allow_partial`` (a few differing keys are loaded with a warning).
MAX_PARTIAL_FRACTION = 0.1

#: ``HistoryBuffer`` methods a pickled ``HistoryBuffer`` references (its
#: ``statistics_methods``, looked up through ``builtins.getattr``).
HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')

#: URL schemes :func:`load_checkpoint_file` downloads.
URL_SCHEMES = ('http', 'https')

_NUMPY_SCALAR_NAMES = ('bool_', 'int8', 'int16', 'int32', 'int64', 'uint8',
                       'uint16', 'uint32', 'uint64', 'float16', 'float32',
                       'float64')
#: The first bytes of torch's legacy (non-zip) format: protocol 2, then the
#: pickled magic number 0x1950a86a20f9469cfc6c (LONG1, 10 bytes).
_LEGACY_TORCH_MAGIC = (b'\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8'
                       b'\x50\x19')
_URL_HASH = re.compile(r'-([0-9a-f]{8,64})(\.[A-Za-z0-9]+)+$')


class CheckpointError(ValueError):
    """A checkpoint file or URL cannot be read; the message names it and
    says what it appears to be."""


class RefusedCheckpointError(CheckpointError, pickle.UnpicklingError):
    """``torch.load(weights_only=True)`` refused an object in the file (also
    a ``pickle.UnpicklingError``, what torch raises)."""


# ---------------------------------------------------------------- allow-list
def _torch_version() -> Tuple[int, int]:
    match = re.match(r'(\d+)\.(\d+)', torch.__version__)
    return int(match.group(1)), int(match.group(2))


def _history_buffer_getattr(owner, name):
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
    from mmengine.logging import HistoryBuffer
    if owner is HistoryBuffer and name in HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Refusing getattr({owner!r}, {name!r}) while loading a checkpoint '
        'with weights_only=True: only HistoryBuffer.'
        f'{{{",".join(HISTORY_BUFFER_METHODS)}}} are allowed.')


def _numpy_multiarray():
    """numpy's ``multiarray`` module, imported by the path this numpy has
    (``numpy._core`` from 2.0 on, ``numpy.core`` before)."""
    import numpy as np
    major = int(np.__version__.split('.')[0])
    return importlib.import_module(
        'numpy._core.multiarray' if major >= 2 else 'numpy.core.multiarray')


def runner_safe_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The non-tensor globals allowed in checkpoints from outside.

    Exactly what mmengine's Runner (``HistoryBuffer`` of the message hub,
    numpy arrays, scalars and dtypes in ``meta``/``message_hub``) and
    single-GPU mmdet 2.x / mmseg 0.x runs (numpy seed and scalars in
    ``meta``) write, plus ``argparse.Namespace`` (DeiT-style ``args``). Found
    with ``torch.serialization.get_unsafe_globals_in_checkpoint`` on such
    files. numpy's ``_reconstruct``/``scalar`` are listed under both the
    numpy 1.x (``numpy.core.multiarray``) and 2.x (``numpy._core.
    multiarray``) names, so files written by either load under either;
    ``builtins.getattr`` maps to a function that answers only
    ``HistoryBuffer``'s statistics methods.

    Returns:
        list: Objects and ``(object, 'module.name')`` tuples, the format of
        ``torch.serialization.safe_globals`` (torch >= 2.6; see
        :func:`allowed_globals` for older versions).
    """
    import numpy as np
    from mmengine.logging import HistoryBuffer

    multiarray = _numpy_multiarray()
    entries: List[Union[Callable, Tuple[Callable, str]]] = [
        argparse.Namespace, HistoryBuffer, np.ndarray, np.dtype
    ]
    entries += [type(np.dtype(getattr(np, n))) for n in _NUMPY_SCALAR_NAMES]
    for name in ('_reconstruct', 'scalar'):
        obj = getattr(multiarray, name)
        entries.append(obj)
        for package in ('numpy.core', 'numpy._core'):
            entries.append((obj, f'{package}.multiarray.{name}'))
    entries.append((_history_buffer_getattr, 'builtins.getattr'))
    return entries


@contextlib.contextmanager
def allowed_globals() -> Iterator[None]:
    """Allow :func:`runner_safe_globals` for ``torch.load(weights_only=True)``
    inside the ``with`` block, and nothing after it.

    torch >= 2.6: all entries; 2.4 and 2.5: the objects under their own
    names (no name mapping, no ``getattr``); < 2.4: nothing (no API).
    """
    entries = runner_safe_globals()
    if _torch_version() < (2, 6):
        entries = [e for e in entries if not isinstance(e, tuple)]
    serialization = torch.serialization
    if hasattr(serialization, 'safe_globals'):
        with serialization.safe_globals(entries):
            yield
    elif hasattr(serialization, 'add_safe_globals'):
        before = list(serialization.get_safe_globals())
        serialization.add_safe_globals(entries)
        try:
            yield
        finally:
            serialization.clear_safe_globals()
            serialization.add_safe_globals(before)
    else:
        yield


# ------------------------------------------------------------------ sniffing
def describe_file(path: str) -> Tuple[str, str]:
    """What a file appears to be, from its first bytes.

    Returns:
        tuple[str, str]: A kind (``'torch-zip'``, ``'pickle'``,
        ``'safetensors'``, ``'npz'``, ``'empty'``, ``'truncated-zip'``,
        ``'zip'``, ``'plain-pickle'``, ``'html'``, ``'text'``, ``'gzip'``,
        ``'tar'``, ``'unknown'``) and a description for messages.
    """
    size = osp.getsize(path)
    if size == 0:
        return 'empty', 'an empty file (0 bytes; an interrupted download?)'
    with open(path, 'rb') as f:
        head = f.read(4096)
    if head.startswith(b'PK\x03\x04'):
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
            if any(n.endswith('data.pkl') for n in names):
                return 'torch-zip', 'a torch zip checkpoint'
            if names and all(n.endswith('.npy') for n in names):
                return 'npz', 'a numpy .npz archive'
            return 'zip', ('a zip archive that is neither a torch '
                           f'checkpoint nor a numpy .npz (holds {names[:3]})')
        return 'truncated-zip', (
            f'a truncated or damaged zip archive ({size} bytes, no central '
            'directory at its end; an interrupted download?)')
    if head.startswith(_LEGACY_TORCH_MAGIC):
        return 'pickle', 'a legacy (non-zip) torch checkpoint'
    if head[:1] == b'\x80' and head[1:2] in (b'\x02', b'\x03', b'\x04',
                                             b'\x05'):
        return 'plain-pickle', (
            'a plain pickle, not a torch checkpoint (e.g. a detectron2 '
            '.pkl); save its weights as a .pth state_dict first')
    if head.startswith(b'\x1f\x8b'):
        return 'gzip', 'a gzip archive (extract it first)'
    if head[257:262] == b'ustar':
        return 'tar', 'a tar archive (extract the checkpoint from it first)'
    if len(head) >= 9:
        header_len = int.from_bytes(head[:8], 'little')
        if 0 < header_len <= size - 8 and head[8:9] == b'{':
            return 'safetensors', 'a safetensors file'
    text = None
    for cut in range(4):  # the 4096-byte cut may split a character
        try:
            text = head[:len(head) - cut].decode('utf-8')
            break
        except UnicodeDecodeError:
            continue
    if text is not None:
        start = text.lstrip('\ufeff \t\r\n').lower()
        if start.startswith(('<!doctype html', '<html')) or '<html' in start:
            return 'html', (
                'an HTML page, not a checkpoint (a Google Drive / Baidu / '
                'login page saved instead of the file? Download the file '
                'itself)')
        if all(c.isprintable() or c in '\t\r\n' for c in text):
            return 'text', f'a plain text file (starts {text[:40]!r})'
    return 'unknown', 'not a format torch or safetensors can read'


# ------------------------------------------------------------------- reading
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


def _refusal(exc: pickle.UnpicklingError,
             source: str) -> RefusedCheckpointError:
    """The error for a file ``torch.load(weights_only=True)`` refused:
    which object, and what to do on torch < 2.6."""
    detail = str(exc).strip().splitlines()
    refused = next((line for line in detail if 'global' in line.lower()),
                   detail[-1] if detail else '')
    hint = ''
    if _torch_version() < (2, 6):
        hint = (f' torch {torch.__version__} cannot allow the objects '
                'that mmengine Runner / numpy-1.x checkpoints hold (the '
                'allow-list needs torch >= 2.6): load the file once with '
                'torch >= 2.6 and save its state_dict.')
    return RefusedCheckpointError(
        f'Refused to read {source} with torch.load(weights_only=True): '
        f'it holds objects other than tensors and the allowed metadata '
        f'types ({refused.strip()}). Files from outside are never '
        f'unpickled with code execution.{hint}')


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


def checkpoint_cache_dir() -> str:
    """Directory that downloaded checkpoints are cached in.

    ``$MMMETAFORMER_CHECKPOINTS`` if set, else ``<torch hub dir>/checkpoints``.
    """
    return os.environ.get('MMMETAFORMER_CHECKPOINTS') or osp.join(
        torch.hub.get_dir(), 'checkpoints')


def cached_path(url: str, cache_dir: Optional[str] = None) -> str:
    """Where :func:`download` keeps ``url``:
    ``<cache_dir>/<sha256(url)[:16]>-<file name of the URL>``."""
    name = osp.basename(urlparse(url).path) or 'download'
    key = hashlib.sha256(url.encode('utf-8')).hexdigest()[:16]
    return osp.join(cache_dir or checkpoint_cache_dir(), f'{key}-{name}')


def url_hash_prefix(url: str) -> Optional[str]:
    """The SHA-256 prefix in a URL's file name (``name-<hex>.pth``, the
    torch hub / OpenMMLab convention), or None."""
    match = _URL_HASH.search(osp.basename(urlparse(url).path))
    return match.group(1) if match else None


def _fetch(url: str, fd: int, timeout: float) -> None:
    """Write the body of ``url`` to the open file ``fd`` (closed after),
    ``fsync``-ed, and check it: as many bytes as the server announced
    (``Content-Length``), and the SHA-256 prefix of the URL's file name.

    Raises:
        CheckpointError: HTTP error, unreachable host, a body cut short,
            a hash mismatch; the message names the URL.
    """
    import http.client
    import urllib.error
    import urllib.request
    digest = hashlib.sha256()
    request = urllib.request.Request(
        url, headers={'User-Agent': 'mmmetaformer'})
    try:
        with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(
                request, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(1 << 20), b''):
                out.write(chunk)
                digest.update(chunk)
            out.flush()
            os.fsync(out.fileno())
            received = out.tell()
            announced = response.headers.get('Content-Length')
    except urllib.error.HTTPError as exc:
        raise CheckpointError(f'Could not download {url}: HTTP '
                              f'{exc.code} {exc.reason}.') from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, 'reason', exc)
        raise CheckpointError(
            f'Could not download {url}: {reason} (unreachable?).') from None
    except http.client.HTTPException as exc:  # IncompleteRead, ...
        raise CheckpointError(
            f'Could not download {url}: {type(exc).__name__}: {exc}. Not '
            'cached; try again.') from None
    if announced is not None and announced.strip().isdigit() \
            and int(announced) != received:
        raise CheckpointError(
            f'Could not download {url}: received {received} of the '
            f'{announced.strip()} bytes the server announced (the '
            'connection closed early). Not cached; try again.')
    expected = url_hash_prefix(url)
    if expected and not digest.hexdigest().startswith(expected):
        raise CheckpointError(
            f'Downloaded {url}, but its SHA-256 starts with '
            f'{digest.hexdigest()[:len(expected)]}, not {expected} as '
            'its file name says: a damaged or different file. Not '
            'cached; try again.')


def download(url: str, cache_dir: Optional[str] = None,
             timeout: float = 60.) -> str:
    """Download ``url`` into the cache (once) and return the local path.

    The file is keyed by the full URL (:func:`cached_path`). The download
    goes to a temporary file in the cache directory that is renamed only
    when complete and verified (as many bytes as the server's
    ``Content-Length``, the SHA-256 prefix of a hashed file name, not a
    truncated zip, an empty file or a web page), so an interrupted or wrong
    download never becomes a cached file. A cached file that is damaged
    (:func:`cached_file_problem`, e.g. cut short by an earlier version) is
    removed and downloaded again, saying so.

    Args:
        url (str): ``http://`` or ``https://`` URL.
        cache_dir (str, optional): Defaults to :func:`checkpoint_cache_dir`.
        timeout (float): Socket timeout in seconds.

    Returns:
        str: Path of the cached file.

    Raises:
        CheckpointError: Unsupported scheme, HTTP error, unreachable host,
            a body shorter than announced, hash mismatch, or an HTML / text
            / empty / truncated answer (the message names the URL).
    """
    scheme = urlparse(url).scheme
    if scheme not in URL_SCHEMES:
        raise CheckpointError(
            f'Unsupported URL scheme {scheme!r} in {url}: give a local path '
            'or an http:// / https:// URL.')
    path = cached_path(url, cache_dir)
    if osp.isfile(path):
        problem = cached_file_problem(path, url)
        if problem is None:
            return path
        print(f'The cached download {path} of {url} is damaged ({problem}): '
              'removing it and downloading it again.', file=sys.stderr,
              flush=True)
        os.remove(path)
    directory = osp.dirname(path)
    os.makedirs(directory, exist_ok=True)
    print(f'Downloading {url} to {path}', file=sys.stderr, flush=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.download-',
                               suffix='.partial')
    try:
        _fetch(url, fd, timeout)
        kind, what = describe_file(tmp)
        if kind in ('empty', 'truncated-zip', 'html', 'text'):
            raise CheckpointError(
                f'{url} returned {what}, not a checkpoint. Not cached.')
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return path


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def cached_file_problem(path: str, url: str) -> Optional[str]:
    """Why a cached download cannot be used, or None.

    A cached file is damaged when it is empty, a truncated zip archive (no
    central directory at its end; torch checkpoints are zip archives), an
    HTML / text page, or, for a URL with a SHA-256 prefix in its file name,
    a file with another hash (the file is read once for that). Files that
    earlier versions cached from a download cut short are found this way.

    Args:
        path (str): The cached file.
        url (str): The URL it was downloaded from.

    Returns:
        str or None: What is wrong with it.
    """
    kind, what = describe_file(path)
    if kind in ('empty', 'truncated-zip', 'html', 'text'):
        return what
    expected = url_hash_prefix(url)
    if expected:
        actual = _sha256_file(path)
        if not actual.startswith(expected):
            return (f'its SHA-256 starts with {actual[:len(expected)]}, not '
                    f'{expected} as the URL says')
    return None


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


def extract_state_dict(
        ckpt: dict,
        prefix: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """Unwrap a checkpoint container and select the keys under ``prefix``.

    The state_dict is taken from ``ckpt['state_dict']`` (mmdet/mmseg/
    mmpretrain), else ``ckpt['model']`` (DeiT-style training scripts,
    detectron2), else ``ckpt`` itself (flat releases). A leading ``module.``
    (DataParallel) is removed.

    Args:
        ckpt (dict): What :func:`load_checkpoint_file` returned.
        prefix (str, optional): Keep only keys starting with it, and remove it
            (e.g. ``'backbone.'`` or detectron2's ``'backbone.bottom_up.'``).

    Returns:
        dict: The selected state_dict.

    Raises:
        ValueError: If it holds no tensor, or none under ``prefix`` (the
            message lists the top-level prefixes it has).
    """
    for container in ('state_dict', 'model'):
        if container in ckpt and isinstance(ckpt[container], dict):
            ckpt = ckpt[container]
            break
    state_dict = {}
    for key, value in ckpt.items():
        if not isinstance(value, torch.Tensor):
            continue
        if key.startswith('module.'):
            key = key[len('module.'):]
        state_dict[key] = value
    if not state_dict:
        raise ValueError('The checkpoint holds no tensors (top-level entries: '
                         f'{sorted(map(str, ckpt))[:12]}).')
    if prefix:
        selected = {
            k[len(prefix):]: v
            for k, v in state_dict.items() if k.startswith(prefix)
        }
        if not selected:
            raise ValueError(
                f'No key starts with prefix={prefix!r}; the checkpoint holds '
                f'{describe_prefixes(state_dict)}.')
        state_dict = selected
    return state_dict


def describe_prefixes(state_dict: Dict[str, torch.Tensor],
                      limit: int = 8) -> str:
    """``'backbone.' (120 tensors), 'neck.' (8), ...`` for messages."""
    counts: Dict[str, int] = {}
    for key in state_dict:
        head = key.split('.')[0] + ('.' if '.' in key else '')
        counts[head] = counts.get(head, 0) + 1
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    parts = [f'{head!r} ({n} tensor{"s" if n > 1 else ""})'
             for head, n in items[:limit]]
    if len(items) > limit:
        parts.append(f'... (+{len(items) - limit} more)')
    return ', '.join(parts)


def nonfinite_keys(state_dict: Dict[str, torch.Tensor]) -> List[str]:
    """Keys of floating-point tensors holding NaN or Inf."""
    return [
        k for k, v in state_dict.items()
        if v.is_floating_point() and not bool(torch.isfinite(v).all())
    ]


def check_finite(state_dict: Dict[str, torch.Tensor], source: str) -> None:
    """Raise ``ValueError`` naming the tensors of ``state_dict`` that hold
    NaN or Inf (a diverged run or a damaged file)."""
    bad = nonfinite_keys(state_dict)
    if bad:
        raise ValueError(
            f'{source}: {len(bad)} tensors hold NaN or Inf values (a '
            f'diverged training run or a damaged file): {_short(bad)}')


# -------------------------------------------------------------------- report
@dataclass
class LoadReport:
    """What :func:`load_state_dict_with_report` did.

    Attributes:
        source (str): Where the weights came from.
        key_format (str): The key naming that was detected and converted.
        loaded (list): Target keys that were loaded.
        ignored (list): Checkpoint keys deliberately not used (e.g. the
            ImageNet classifier's ``head.*``), after conversion.
        missing (list): Target keys absent from the checkpoint.
        unexpected (list): Checkpoint keys that match nothing.
        reshaped (list): Keys whose 1x1-conv weight was loaded into a Linear
            layer (or the reverse); the values are the same.
        expected_missing (list): Subset of ``missing`` that the checkpoint
            kind cannot contain (e.g. dense-only output norms in an ImageNet
            checkpoint); they keep their initialisation.
    """
    source: str
    key_format: str
    loaded: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    reshaped: List[str] = field(default_factory=list)
    expected_missing: List[str] = field(default_factory=list)
    adapted: List[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No key was missing or unexpected beyond the expected ones."""
        return not self.unexpected and set(self.missing) <= set(
            self.expected_missing)

    def summary(self) -> str:
        lines = [
            f'Loaded {len(self.loaded)} tensors from {self.source} '
            f'({self.key_format} key names).'
        ]
        if self.ignored:
            lines.append(f'Ignored {len(self.ignored)} keys not used by the '
                         f'dense backbone: {_short(self.ignored)}')
        if self.reshaped:
            lines.append(f'Reshaped {len(self.reshaped)} 1x1-conv/Linear '
                         f'weights (same values): {_short(self.reshaped, 3)}')
        if self.adapted:
            lines.append(f'Adapted {len(self.adapted)} key(s): ' +
                         '; '.join(self.adapted))
        if self.expected_missing:
            lines.append(
                f'Kept the initialisation of {len(self.expected_missing)} '
                f'keys this checkpoint kind does not have: '
                f'{_short(self.expected_missing)}')
        other_missing = [
            k for k in self.missing if k not in self.expected_missing
        ]
        if other_missing:
            lines.append(f'MISSING {len(other_missing)} keys: '
                         f'{_short(other_missing)}')
        if self.unexpected:
            lines.append(f'UNEXPECTED {len(self.unexpected)} keys: '
                         f'{_short(self.unexpected)}')
        return '\n'.join(lines)


def _short(keys: Sequence[str], limit: int = 12) -> str:
    keys = list(keys)
    text = ', '.join(keys[:limit])
    return text + (f', ... (+{len(keys) - limit})'
                   if len(keys) > limit else '')


def _fits_as_reshape(src: torch.Tensor, dst: torch.Tensor) -> bool:
    """A 1x1 convolution weight (O, I, 1, 1) vs a Linear weight (O, I)."""
    shapes = {tuple(src.shape), tuple(dst.shape)}
    if len(shapes) != 2:
        return False
    a, b = sorted(shapes, key=len)
    return len(a) == 2 and b == a + (1, 1)


def fit_tensor(key: str, value: torch.Tensor, dst: torch.Tensor,
               hint: str = '') -> Tuple[torch.Tensor, bool]:
    """Give ``value`` the shape of ``dst`` where that changes nothing.

    A 1x1-conv weight and a Linear weight with the same (out, in) are
    interchangeable; any other shape difference raises, naming the key.

    Returns:
        tuple[Tensor, bool]: The tensor and whether it was reshaped.
    """
    if value.shape == dst.shape:
        return value, False
    if _fits_as_reshape(value, dst):
        return value.reshape(dst.shape), True
    raise ValueError(f'Shape mismatch for {key!r}: checkpoint '
                     f'{tuple(value.shape)}, model {tuple(dst.shape)}. '
                     f'{hint}'.rstrip())


def _matching_keys(module: nn.Module, state_dict: Dict[str, torch.Tensor],
                   target: set) -> int:
    """How many target keys ``state_dict`` fills after ``module``'s key
    conversion (``convert_checkpoint``, if it has one)."""
    convert = getattr(module, 'convert_checkpoint', None)
    if convert is not None:
        try:
            state_dict, _ = convert(state_dict)
        except Exception:  # a foreign layout may confuse a converter
            return 0
    return len(target & set(state_dict))


def _prefix_candidates(keys: Sequence[str]) -> List[str]:
    """Prefixes of one or two dotted components that occur in ``keys``."""
    found = []
    for key in keys:
        parts = key.split('.')
        for n in (1, 2):
            if len(parts) > n:
                prefix = '.'.join(parts[:n]) + '.'
                if prefix not in found:
                    found.append(prefix)
    return found


def is_mmpretrain_classifier(keys: Sequence[str]) -> bool:
    """An mmpretrain ``ImageClassifier`` state_dict: the backbone under
    ``backbone.``, the classifier under ``head.`` (``head.fc.*`` for
    ``LinearClsHead``), no dense neck or head."""
    keys = list(keys)
    return (any(k.startswith('backbone.') for k in keys)
            and any(k.startswith('head.') for k in keys) and not any(
                k.startswith(('neck.lateral_convs', 'bbox_head.',
                              'decode_head.', 'rpn_head.', 'roi_head.'))
                for k in keys))


def nothing_loaded_message(
        module: nn.Module,
        state_dict: Dict[str, torch.Tensor],
        source: str,
        loaded: int,
        original: Optional[Dict[str, torch.Tensor]] = None) -> str:
    """Explain a load that filled too few of ``module``'s tensors: what the
    checkpoint holds and, when one makes it load, the ``prefix=`` to use.

    Args:
        module (nn.Module): The target (its ``convert_checkpoint`` is used
            to try prefixes).
        state_dict (dict): The checkpoint's tensors as they were given.
        source (str): The file, for the message.
        loaded (int): How many tensors were loaded.
        original (dict, optional): The keys before conversion, to name the
            family and arch the checkpoint is of (default ``state_dict``).

    Returns:
        str: The message.
    """
    from mmmetaformer.identify import hint_for
    target = set(module.state_dict())
    name = type(module).__name__
    lines = [
        f'{name}: only {loaded} of its {len(target)} tensors are in '
        f'{source} (the checkpoint holds {len(state_dict)} tensors: '
        f'{describe_prefixes(state_dict)}). Refusing to go on with '
        'randomly initialised weights.'
    ]
    identity = hint_for(module,
                        state_dict if original is None else original, source)
    if identity:
        lines.append(identity)
        return '\n'.join(lines)
    if is_mmpretrain_classifier(state_dict):
        lines.append('It is an mmpretrain classifier checkpoint: the '
                     "backbone's weights are under 'backbone.' (for "
                     "PoolFormer with the official key names).")
    best = max(((_matching_keys(
        module, {k[len(p):]: v
                 for k, v in state_dict.items() if k.startswith(p)}, target),
                 p) for p in _prefix_candidates(list(state_dict))),
               default=(0, ''))
    if best[0] > loaded and best[0] >= MIN_LOADED_FRACTION * len(target):
        lines.append(
            f"With prefix={best[1]!r}, {best[0]} of {len(target)} tensors "
            f"load: init_cfg=dict(type='Pretrained', checkpoint=..., "
            f"prefix={best[1]!r}) (or load_pretrained(..., "
            f"prefix={best[1]!r})); if you gave a prefix already, append "
            'this one to it.')
    else:
        lines.append('No key prefix makes it fit: is it a checkpoint of '
                     f'this backbone ({name}) and arch?')
    return '\n'.join(lines)


def partial_load_message(module: nn.Module, report: 'LoadReport',
                         state_dict: Dict[str, torch.Tensor]) -> str:
    """Explain a refused partial load: how many tensors fit, the missing
    and unexpected keys, what the checkpoint is (when it is another family
    or arch) and the opt-in."""
    from mmmetaformer.identify import hint_for
    name = type(module).__name__
    other_missing = [
        k for k in report.missing if k not in report.expected_missing
    ]
    total = len(report.loaded) + len(report.missing)
    lines = [
        f'{name}: {report.source} fills {len(report.loaded)} of the '
        f"model's {total} tensors, but {len(other_missing)} of the model's "
        f"keys are missing from it and {len(report.unexpected)} of its keys "
        'are not in the model (more than '
        f'{MAX_PARTIAL_FRACTION:.0%} of the model): a partial load, refused.'
    ]
    if other_missing:
        lines.append(f'Missing: {_short(other_missing, 8)}')
    if report.unexpected:
        lines.append(f'Unexpected: {_short(report.unexpected, 8)}')
    identity = hint_for(module, state_dict, report.source)
    if identity:
        lines.append(identity)
    lines.append(
        "If the partial load is intended: init_cfg=dict(type='Pretrained', "
        'checkpoint=..., allow_partial=True) (or load_pretrained(..., '
        'allow_partial=True); tools/train.py --allow-partial).')
    return '\n'.join(lines)


def _fit_all(module: nn.Module, state_dict: Dict[str, torch.Tensor],
             report: 'LoadReport', ignore: Sequence['re.Pattern'],
             expected: Sequence['re.Pattern'],
             original: Dict[str, torch.Tensor]) -> dict:
    """The tensors of ``state_dict`` that ``module`` has, fitted to its
    shapes (:func:`fit_tensor`); fills the lists of ``report``. A shape
    mismatch names what the checkpoint is (from ``original``, the keys
    before conversion)."""
    target = module.state_dict()
    to_load = {}
    for key, value in state_dict.items():
        if key not in target:
            if any(p.match(key) for p in ignore):
                report.ignored.append(key)
            else:
                report.unexpected.append(key)
            continue
        try:
            value, reshaped = fit_tensor(
                key, value, target[key],
                f'({report.source}) Is the arch the right one?')
        except ValueError as error:
            from mmmetaformer.identify import hint_for
            raise ValueError(' '.join(filter(None, [
                str(error), hint_for(module, original, report.source)
            ]))) from None
        if reshaped:
            report.reshaped.append(key)
        to_load[key] = value
    report.missing = [k for k in target if k not in to_load]
    report.expected_missing = [
        k for k in report.missing if any(p.match(k) for p in expected)
    ]
    report.loaded = list(to_load)
    return to_load


def load_state_dict_with_report(
        module: nn.Module,
        state_dict: Dict[str, torch.Tensor],
        source: str = '<state_dict>',
        key_format: str = 'native',
        ignore_patterns: Sequence[str] = (),
        expected_missing_patterns: Sequence[str] = (),
        allow_partial: bool = False,
        original: Optional[Dict[str, torch.Tensor]] = None) -> LoadReport:
    """Copy a (converted) state_dict into ``module`` and say what happened.
    Shapes must match (:func:`fit_tensor`: 1x1-conv and Linear weights of
    the same (out, in) are interchangeable).

    Args:
        module (nn.Module): Target.
        state_dict (dict): Source tensors, already in the target's key names.
        source (str): Description of the source, for the report.
        key_format (str): Name of the detected key format, for the report.
        ignore_patterns (Sequence[str]): Regexes (``re.match``) of source keys
            to drop and report as ignored.
        expected_missing_patterns (Sequence[str]): Regexes of target keys
            whose absence is expected.
        allow_partial (bool): Load with a warning when more than
            :data:`MAX_PARTIAL_FRACTION` of ``module``'s tensors are
            missing (beyond the expected ones) or unexpected, instead of
            raising. Defaults to False.
        original (dict, optional): ``state_dict`` before key conversion
            (for messages). Defaults to ``state_dict``.

    Returns:
        LoadReport: The report.

    Raises:
        ValueError: On a shape mismatch; when fewer than
            :data:`MIN_LOADED_FRACTION` of ``module``'s tensors (or none)
            would load (:func:`nothing_loaded_message`); on a partial load
            without ``allow_partial`` (:func:`partial_load_message`); when
            a tensor to load holds NaN or Inf. Nothing is loaded then. A
            checkpoint of another family or arch is named.
    """
    report = LoadReport(source=source, key_format=key_format)
    target = module.state_dict()
    original = state_dict if original is None else original
    to_load = _fit_all(module, state_dict, report,
                       [re.compile(p) for p in ignore_patterns],
                       [re.compile(p) for p in expected_missing_patterns],
                       original)
    if target and (not to_load
                   or len(to_load) < MIN_LOADED_FRACTION * len(target)):
        raise ValueError(
            nothing_loaded_message(module, state_dict, source, len(to_load),
                                   original))
    differing = len(report.unexpected) + len(report.missing) - len(
        report.expected_missing)
    if differing > MAX_PARTIAL_FRACTION * len(target) and not allow_partial:
        raise ValueError(partial_load_message(module, report, original))
    check_finite(to_load, source)
    module.load_state_dict(to_load, strict=False)
    return report


def split_prefix(state_dict: Dict[str, torch.Tensor],
                 prefix: str) -> Tuple[dict, dict]:
    """Split a state_dict into (keys under ``prefix`` stripped, the rest)."""
    inside, rest = {}, {}
    for k, v in state_dict.items():
        if k.startswith(prefix):
            inside[k[len(prefix):]] = v
        else:
            rest[k] = v
    return inside, rest
