"""Downloading checkpoints once into a cache keyed by the full URL.

URLs (``http://``, ``https://``) are downloaded once into
:func:`checkpoint_cache_dir` under ``<sha256(url)[:16]>-<file name>``: two
URLs never share a cached file, even when their file names are equal
(every Hugging Face repository names its file ``model.safetensors``). A
hash in the file name (``name-<sha256 prefix>.pth``, the torch hub /
OpenMMLab convention) is verified before the file is kept. Downloads are
written to a temporary file in the cache directory and renamed when
complete and verified; a damaged cached file is downloaded again.
"""
import hashlib
import os
import os.path as osp
import re
import sys
import tempfile
from typing import Optional
from urllib.parse import urlparse

import torch

from .errors import CheckpointError
from .sniff import describe_file

#: URL schemes :func:`download` (and so
#: :func:`~mmmetaformer.checkpoint.load_checkpoint_file`) downloads.
URL_SCHEMES = ('http', 'https')

_URL_HASH = re.compile(r'-([0-9a-f]{8,64})(\.[A-Za-z0-9]+)+$')
#: What :func:`describe_file` says of an answer that is not a checkpoint.
_NOT_A_CHECKPOINT = ('empty', 'truncated-zip', 'html', 'text')


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
    if not _usable_cached_file(path, url):
        _download_to(url, path, timeout)
    return path


def _usable_cached_file(path: str, url: str) -> bool:
    """Whether ``path`` holds a good download of ``url``; a damaged one is
    removed, saying so."""
    if not osp.isfile(path):
        return False
    problem = cached_file_problem(path, url)
    if problem is None:
        return True
    print(f'The cached download {path} of {url} is damaged ({problem}): '
          'removing it and downloading it again.', file=sys.stderr,
          flush=True)
    os.remove(path)
    return False


def _download_to(url: str, path: str, timeout: float) -> None:
    """Download ``url`` to a temporary file beside ``path``; rename it to
    ``path`` once complete and verified (removed otherwise)."""
    directory = osp.dirname(path)
    os.makedirs(directory, exist_ok=True)
    print(f'Downloading {url} to {path}', file=sys.stderr, flush=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.download-',
                               suffix='.partial')
    try:
        _fetch(url, fd, timeout)
        kind, what = describe_file(tmp)
        if kind in _NOT_A_CHECKPOINT:
            raise CheckpointError(
                f'{url} returned {what}, not a checkpoint. Not cached.')
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


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
    if kind in _NOT_A_CHECKPOINT:
        return what
    expected = url_hash_prefix(url)
    if expected:
        actual = _sha256_file(path)
        if not actual.startswith(expected):
            return (f'its SHA-256 starts with {actual[:len(expected)]}, not '
                    f'{expected} as the URL says')
    return None
