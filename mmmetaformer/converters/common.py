"""What every converter shares: the report, the error, reading the source
file and recognising its format, renaming keys by a rule table, and the
regular-expression pieces of the rule tables."""
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from mmmetaformer.checkpoint import extract_state_dict, load_checkpoint_file
from mmmetaformer.keymap import KeyMap, Rule

Tensor = torch.Tensor
StateDict = Dict[str, Tensor]

#: Model keys that may be absent from a checkpoint without consequence
#: (BN counters older PyTorch versions did not save).
EXPECTED_MISSING = (r'(.*\.)?num_batches_tracked$', )


def missing_and_unexpected(target: dict, state_dict: dict
                           ) -> Tuple[List[str], List[str]]:
    """Keys of ``target`` (a model's state_dict) absent from ``state_dict``
    (except :data:`EXPECTED_MISSING`), and keys of ``state_dict`` absent
    from ``target``."""
    missing = [k for k in target if k not in state_dict and not any(
        re.match(p, k) for p in EXPECTED_MISSING)]
    unexpected = [k for k in state_dict if k not in target]
    return missing, unexpected


class ConversionError(ValueError):
    """A checkpoint cannot be converted; the message says why."""


@dataclass
class ConversionReport:
    """What a conversion did.

    Attributes:
        source_format (str): ``mmdet2``, ``mmseg0`` or ``detectron2``.
        family (str): The backbone class of the config.
        backbone_format (str): What the backbone class detected.
        converted (int): Keys written.
        ignored (list): Source keys deliberately dropped, with the reason.
        reshaped (list): Keys whose 1x1-conv / Linear shape was adapted.
        permuted (list): Keys whose output channels were reordered.
        warnings (list): Differences between the source model and the
            config that the weights cannot express (e.g. pixel format), and
            with ``allow_partial`` the missing / unexpected keys.
        strict (bool): Whether the result loaded with ``strict=True``.
    """
    source_format: str
    family: str = ''
    backbone_format: str = ''
    converted: int = 0
    ignored: List[str] = field(default_factory=list)
    reshaped: List[str] = field(default_factory=list)
    permuted: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    strict: bool = True

    def summary(self) -> str:
        how = 'loaded with strict=True' if self.strict else \
            'PARTIAL load (--allow-partial)'
        lines = [f'Converted {self.converted} tensors from a '
                 f'{self.source_format} checkpoint ({self.family} backbone '
                 f'keys: {self.backbone_format}); {how}.']
        if self.reshaped:
            lines.append(f'Reshaped {len(self.reshaped)} 1x1-conv/Linear '
                         'weights (same values).')
        for item in self.permuted:
            lines.append(f'Permuted: {item}')
        for item in self.ignored:
            lines.append(f'Ignored: {item}')
        for item in self.warnings:
            lines.append(f'WARNING: {item}')
        return '\n'.join(lines)


def detect_source_format(state_dict: StateDict) -> Optional[str]:
    """The framework a dense checkpoint's keys come from, or None.

    ``backbone.bottom_up.*`` is detectron2; ``decode_head.*`` /
    ``auxiliary_head.*`` mmseg; ``bbox_head.*`` / ``rpn_head.*`` /
    ``roi_head.*`` mmdet (mmdet 2.x and 3.x, mmseg 0.x and 1.x share these
    names; the backbone keys tell the versions apart).
    """
    keys = list(state_dict)
    if any(k.startswith('backbone.bottom_up.') for k in keys):
        return 'detectron2'
    if any(k.startswith(('decode_head.', 'auxiliary_head.')) for k in keys):
        return 'mmseg0'
    if any(k.startswith(('bbox_head.', 'rpn_head.', 'roi_head.'))
           for k in keys):
        return 'mmdet2'
    return None


def read_source(path: str) -> Tuple[StateDict, dict]:
    """Read a checkpoint file; return its state_dict and its ``meta``.

    detectron2 ``.pkl`` files (plain pickles of numpy arrays) are refused:
    torch cannot read them with ``weights_only=True``.
    """
    if path.endswith('.pkl'):
        raise ConversionError(
            f'{path}: .pkl checkpoints are plain pickles that cannot be read '
            'without running code from the file; convert them to a .pth '
            'state_dict in a trusted environment first.')
    ckpt = load_checkpoint_file(path)
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    return extract_state_dict(ckpt), meta


def rename_by_rules(state_dict: StateDict, rules: Sequence[Rule],
                    ignore: Sequence[Tuple[str, str]] = (),
                    what: str = 'checkpoint') -> Tuple[StateDict, List[str]]:
    """Rename every key by ``rules``; drop the keys ``ignore`` names.

    Args:
        state_dict (dict): Source keys.
        rules (Sequence[Rule]): :class:`~mmmetaformer.keymap.KeyMap` rules.
        ignore (Sequence[tuple]): ``(regex, reason)`` of keys to drop
            (``re.fullmatch``).
        what (str): Name of the source, for error messages.

    Returns:
        tuple: The renamed dict and ``'key (reason)'`` for each dropped key.

    Raises:
        ConversionError: If a key matches no rule and no ignore pattern.
        KeyError: If two keys map to the same name.
    """
    renamed, unmatched = KeyMap(rules).apply(state_dict, keep_unmatched=False)
    ignored, unknown = [], []
    for key in unmatched:
        why = next((w for p, w in ignore if re.fullmatch(p, key)), None)
        if why is None:
            unknown.append(key)
        else:
            ignored.append(f'{key} ({why})')
    if unknown:
        raise ConversionError(
            f'{what}: {len(unknown)} keys match no conversion rule, e.g. '
            f'{unknown[:8]}. Is it the right converter and config?')
    return renamed, ignored


# Pieces of the rules' regular expressions (key endings).
_PARAM = r'\.(weight|bias)$'
_CONV = r'\.conv\.(weight|bias)$'
_CONV_BN = (r'\.(conv\.(weight|bias)|bn\.(weight|bias|running_mean|'
            r'running_var|num_batches_tracked))$')
