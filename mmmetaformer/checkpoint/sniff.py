"""What a file appears to be, from its first bytes (no torch needed).

:func:`describe_file` tells a torch checkpoint (zip or legacy), a
safetensors file and a numpy ``.npz`` from what is often saved in their
place: an empty file, a truncated zip archive (an interrupted download),
an HTML or plain text page, a gzip / tar archive, a plain pickle.
"""
import os.path as osp
import zipfile
from typing import Optional, Tuple

#: The first bytes of torch's legacy (non-zip) format: protocol 2, then the
#: pickled magic number 0x1950a86a20f9469cfc6c (LONG1, 10 bytes).
_LEGACY_TORCH_MAGIC = (b'\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8'
                       b'\x50\x19')


def _describe_zip(path: str, size: int) -> Tuple[str, str]:
    """A file that starts like a zip archive: a torch checkpoint, an
    ``.npz``, another archive or a truncated one."""
    if not zipfile.is_zipfile(path):
        return 'truncated-zip', (
            f'a truncated or damaged zip archive ({size} bytes, no central '
            'directory at its end; an interrupted download?)')
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if any(n.endswith('data.pkl') for n in names):
        return 'torch-zip', 'a torch zip checkpoint'
    if names and all(n.endswith('.npy') for n in names):
        return 'npz', 'a numpy .npz archive'
    return 'zip', ('a zip archive that is neither a torch '
                   f'checkpoint nor a numpy .npz (holds {names[:3]})')


def _describe_text(head: bytes) -> Optional[Tuple[str, str]]:
    """An HTML page or a plain text file, or None for binary content."""
    text = None
    for cut in range(4):  # the 4096-byte cut may split a character
        try:
            text = head[:len(head) - cut].decode('utf-8')
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        return None
    start = text.lstrip('\ufeff \t\r\n').lower()
    if start.startswith(('<!doctype html', '<html')) or '<html' in start:
        return 'html', (
            'an HTML page, not a checkpoint (a Google Drive / Baidu / '
            'login page saved instead of the file? Download the file '
            'itself)')
    if all(c.isprintable() or c in '\t\r\n' for c in text):
        return 'text', f'a plain text file (starts {text[:40]!r})'
    return None


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
        return _describe_zip(path, size)
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
    return _describe_text(head) or (
        'unknown', 'not a format torch or safetensors can read')
