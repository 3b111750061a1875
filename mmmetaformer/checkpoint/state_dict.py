"""State dicts read from checkpoint files: unwrapping the container,
selecting a prefix, describing the keys and checking the values."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch


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
