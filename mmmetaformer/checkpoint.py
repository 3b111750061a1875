"""Reading checkpoint files from outside and loading them with a report.

Every file read here (pretrained ImageNet weights, official dense checkpoints,
converter inputs) is loaded with ``torch.load(..., weights_only=True)``: no
code from a downloaded file is ever executed. The only non-tensor type that
is allowed is ``argparse.Namespace``, which the DeiT-style training scripts of
ResT and CycleMLP store under ``'args'`` next to the weights.
"""
import argparse
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlparse

import torch
import torch.nn as nn

SAFE_CHECKPOINT_GLOBALS = [argparse.Namespace]


def checkpoint_cache_dir() -> str:
    """Directory that downloaded checkpoints are cached in.

    ``$MMMETAFORMER_CHECKPOINTS`` if set, else ``<torch hub dir>/checkpoints``.
    """
    return os.environ.get('MMMETAFORMER_CHECKPOINTS') or osp.join(
        torch.hub.get_dir(), 'checkpoints')


def load_checkpoint_file(filename: str, map_location='cpu') -> dict:
    """Read a checkpoint from a local path or an http(s) URL.

    URLs are downloaded once into :func:`checkpoint_cache_dir`. The file is
    read with ``weights_only=True``.

    Args:
        filename (str): Local path or ``http(s)://`` URL.
        map_location: Passed to :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        dict: What the file holds.
    """
    if filename.startswith(('http://', 'https://')):
        cache_dir = checkpoint_cache_dir()
        os.makedirs(cache_dir, exist_ok=True)
        path = osp.join(cache_dir, osp.basename(urlparse(filename).path))
        if not osp.isfile(path):
            torch.hub.download_url_to_file(filename, path, progress=True)
        filename = path
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file not found: {filename}')
    with torch.serialization.safe_globals(SAFE_CHECKPOINT_GLOBALS):
        ckpt = torch.load(
            filename, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict):
        raise TypeError(f'{filename} holds a {type(ckpt).__name__}, '
                        'expected a dict (a state_dict or a container).')
    return ckpt


def extract_state_dict(ckpt: dict,
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
    if prefix:
        selected = {
            k[len(prefix):]: v
            for k, v in state_dict.items() if k.startswith(prefix)
        }
        if not selected:
            heads = sorted({k.split('.')[0] + '.' for k in state_dict})
            raise KeyError(f'No key starts with prefix {prefix!r}; the '
                           f'checkpoint\'s top-level names are {heads}.')
        state_dict = selected
    if not state_dict:
        raise KeyError('The checkpoint holds no tensors.')
    return state_dict


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


def load_state_dict_with_report(
        module: nn.Module,
        state_dict: Dict[str, torch.Tensor],
        source: str = '<state_dict>',
        key_format: str = 'native',
        ignore_patterns: Sequence[str] = (),
        expected_missing_patterns: Sequence[str] = ()) -> LoadReport:
    """Copy a (converted) state_dict into ``module`` and say what happened.

    Shapes must match exactly, except that a 1x1-conv weight and a Linear
    weight with the same (out, in) are interchangeable. Any other shape
    mismatch raises, naming the key.

    Args:
        module (nn.Module): Target.
        state_dict (dict): Source tensors, already in the target's key names.
        source (str): Description of the source, for the report.
        key_format (str): Name of the detected key format, for the report.
        ignore_patterns (Sequence[str]): Regexes (``re.match``) of source keys
            to drop and report as ignored.
        expected_missing_patterns (Sequence[str]): Regexes of target keys
            whose absence is expected.

    Returns:
        LoadReport: The report.
    """
    report = LoadReport(source=source, key_format=key_format)
    target = module.state_dict()
    ignore = [re.compile(p) for p in ignore_patterns]
    expected = [re.compile(p) for p in expected_missing_patterns]
    to_load = {}
    for key, value in state_dict.items():
        if key not in target:
            if any(p.match(key) for p in ignore):
                report.ignored.append(key)
            else:
                report.unexpected.append(key)
            continue
        value, reshaped = fit_tensor(
            key, value, target[key],
            f'({source}) Is the arch the right one?')
        if reshaped:
            report.reshaped.append(key)
        to_load[key] = value
    report.missing = [k for k in target if k not in to_load]
    report.expected_missing = [
        k for k in report.missing if any(p.match(k) for p in expected)
    ]
    report.loaded = list(to_load)
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
