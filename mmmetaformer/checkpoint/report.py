"""What a load of a state_dict into a module did (:class:`LoadReport`),
the thresholds that make a load refused, and the messages that explain a
refused load (what the checkpoint holds, the ``prefix=`` that would make
it load, the family / arch it is of)."""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from .state_dict import _short, describe_prefixes

#: Fraction of a module's tensors that a checkpoint must fill; below it
#: :func:`load_state_dict_with_report` raises (0 loaded tensors always does).
MIN_LOADED_FRACTION = 0.5

#: Missing (beyond the expected ones) plus unexpected keys, as a fraction of
#: a module's tensors, above which a load is partial: refused unless
#: ``allow_partial`` (a few differing keys are loaded with a warning).
MAX_PARTIAL_FRACTION = 0.1


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
