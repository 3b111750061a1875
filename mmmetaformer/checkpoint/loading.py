"""Loading a (converted) state_dict into a module with a report
(:func:`load_state_dict_with_report`): shapes fitted where that changes
nothing (:func:`fit_tensor`), too few loaded tensors and partial loads
refused with a message that says why (:mod:`.report`)."""
import re
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .report import (MAX_PARTIAL_FRACTION, MIN_LOADED_FRACTION, LoadReport,
                     nothing_loaded_message, partial_load_message)
from .state_dict import _fits_as_reshape, check_finite


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
    original = state_dict if original is None else original
    to_load = _fit_all(module, state_dict, report,
                       [re.compile(p) for p in ignore_patterns],
                       [re.compile(p) for p in expected_missing_patterns],
                       original)
    _refuse_incomplete(module, state_dict, report, len(to_load), original,
                       allow_partial)
    check_finite(to_load, source)
    module.load_state_dict(to_load, strict=False)
    return report


def _refuse_incomplete(module: nn.Module,
                       state_dict: Dict[str, torch.Tensor],
                       report: LoadReport, loaded: int,
                       original: Dict[str, torch.Tensor],
                       allow_partial: bool) -> None:
    """Raise ``ValueError`` when ``loaded`` tensors are too few for
    ``module`` (:data:`MIN_LOADED_FRACTION`) or, unless ``allow_partial``,
    too many keys differ (:data:`MAX_PARTIAL_FRACTION`)."""
    target = module.state_dict()
    if target and (not loaded or loaded < MIN_LOADED_FRACTION * len(target)):
        raise ValueError(
            nothing_loaded_message(module, state_dict, report.source, loaded,
                                   original))
    differing = len(report.unexpected) + len(report.missing) - len(
        report.expected_missing)
    if differing > MAX_PARTIAL_FRACTION * len(target) and not allow_partial:
        raise ValueError(partial_load_message(module, report, original))
