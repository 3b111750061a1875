"""Checks the tools run before a Runner loads a checkpoint (``load_from``,
``tools/test.py``, ``tools/reproduce.py``): an official dense checkpoint
that was not converted names the converter to run
(:func:`check_load_from`), an mmpretrain classifier names the backbone
``init_cfg`` route, and a checkpoint that does not fit the model lists the
missing and unexpected keys (:func:`check_checkpoint_fits`)."""
from typing import List, Optional, Sequence, Tuple

import torch

from mmmetaformer.checkpoint import (MIN_LOADED_FRACTION, describe_prefixes,
                                     extract_state_dict,
                                     is_mmpretrain_classifier,
                                     load_checkpoint_file, split_prefix)
from mmmetaformer.converters.common import (StateDict, detect_source_format,
                                            missing_and_unexpected)
from mmmetaformer.converters.model import unwrap_model
from mmmetaformer.converters.scripts import (CONVERTER_SCRIPTS,
                                             SOURCE_DESCRIPTIONS)
from mmmetaformer.identify import describe, identify


def _target_scope_format(model) -> str:
    name = type(model).__module__
    return 'mmseg0' if name.startswith('mmseg') else 'mmdet2'


def check_load_from(checkpoint: str, model: torch.nn.Module,
                    config: Optional[str] = None) -> None:
    """Stop an official dense checkpoint with old-format backbone keys from
    being given to mmengine's ``load_from`` unconverted (mmengine would
    load it non-strictly and leave the backbone randomly initialised).

    Args:
        checkpoint (str): The ``load_from`` path or URL.
        model (nn.Module): The Runner's model (wrappers are unwrapped).
        config (str, optional): The config path, for the command shown.

    Raises:
        ValueError: Naming the converter to run, with the command.
    """
    model = unwrap_model(model)
    state_dict = extract_state_dict(load_checkpoint_file(checkpoint))
    _refuse_unconverted(state_dict, model, checkpoint, config)


def _refuse_unconverted(state_dict: StateDict, model, checkpoint: str,
                        config: Optional[str]) -> None:
    backbone = getattr(model, 'backbone', None)
    if backbone is None or not hasattr(type(backbone), 'convert_checkpoint'):
        return
    if is_mmpretrain_classifier(state_dict) and detect_source_format(
            state_dict) is None:
        raise ValueError(classifier_message(checkpoint, state_dict,
                                            backbone))
    found = _unconverted_message(state_dict, model, backbone)
    if found:
        fmt, detail = found
        raise ValueError(
            f'{checkpoint} is {SOURCE_DESCRIPTIONS[fmt]} that was not '
            f'converted: {detail}. mmengine would load it non-strictly and '
            'leave the backbone randomly initialised. Convert it first and '
            f'load the result:\n  python {CONVERTER_SCRIPTS[fmt]} '
            f'{checkpoint} {config or "CONFIG"} converted.pth')


def classifier_message(checkpoint: str, state_dict: StateDict,
                       backbone) -> str:
    """Why an mmpretrain classifier file is not a ``load_from`` /
    ``tools/test.py`` checkpoint, and the route that loads its backbone."""
    inside, _ = split_prefix(state_dict, 'backbone.')
    name = type(backbone).__name__
    found = identify(inside, prefer=name)
    what = f' Its backbone.* keys are {describe(found)}.' if found else ''
    return (
        f'{checkpoint} is an mmpretrain image classifier checkpoint '
        f'(backbone.* and head.* keys, {describe_prefixes(state_dict)}), '
        'not a checkpoint of the whole detector / segmentor that load_from '
        f'and tools/test.py expect (no converter makes it one).{what} To '
        'start from its backbone weights, load them into the backbone '
        "instead: model.backbone.init_cfg=dict(type='Pretrained', "
        f"checkpoint='{checkpoint}', prefix='backbone.') and no load_from "
        '(--cfg-options model.backbone.init_cfg.type=Pretrained '
        f'model.backbone.init_cfg.checkpoint={checkpoint} '
        'model.backbone.init_cfg.prefix=backbone. load_from=None).')


def _unconverted_message(state_dict: StateDict, model,
                         backbone) -> Optional[Tuple[str, str]]:
    """``(source format, what was found)`` when ``state_dict`` is a dense
    checkpoint whose backbone keys need a converter, else None."""
    target = set(backbone.state_dict())
    if any(k.startswith('backbone.bottom_up.') for k in state_dict):
        return 'detectron2', 'its backbone is under backbone.bottom_up.*'
    inside, _ = split_prefix(state_dict, 'backbone.')
    if not inside or len(target & set(inside)) >= MIN_LOADED_FRACTION * len(
            target):
        return None
    converted, key_format = type(backbone).convert_checkpoint(inside)
    if len(target & set(converted)) < MIN_LOADED_FRACTION * len(target):
        return None
    fmt = detect_source_format(state_dict) or _target_scope_format(model)
    return fmt, (f'its backbone.* keys have the official '
                 f'{type(backbone).__name__} names ({key_format})')


def check_checkpoint_fits(checkpoint: str,
                          model: torch.nn.Module,
                          config: Optional[str] = None,
                          allow_partial: bool = False) -> List[str]:
    """Refuse a checkpoint that does not fit ``model`` before it is
    evaluated (``tools/test.py``, ``tools/reproduce.py``).

    Keys are compared as mmengine's ``load_from`` compares them (a leading
    ``module.`` removed, wrappers unwrapped); the keys of
    :data:`~mmmetaformer.converters.common.EXPECTED_MISSING` may be
    absent. An unconverted official dense checkpoint names its
    converter (:func:`check_load_from`).

    Args:
        checkpoint (str): Path or URL.
        model (nn.Module): The model to evaluate.
        config (str, optional): The config path, for messages.
        allow_partial (bool): Return the problems instead of raising.

    Returns:
        list[str]: The problems found (empty when the checkpoint fits).

    Raises:
        ValueError: Listing the missing and unexpected keys (unless
            ``allow_partial``), or naming the converter to run.
    """
    inner = unwrap_model(model)
    state_dict = extract_state_dict(load_checkpoint_file(checkpoint))
    if not allow_partial:
        _refuse_unconverted(state_dict, inner, checkpoint, config)
    target = inner.state_dict()
    missing, unexpected = missing_and_unexpected(target, state_dict)
    mismatched = [
        f'{k} {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}'
        for k, v in target.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f'{len(missing)} model keys missing from the '
                        f'checkpoint: {_listing(missing)}')
    if unexpected:
        problems.append(f'{len(unexpected)} checkpoint keys not in the '
                        f'model: {_listing(unexpected)}')
    if mismatched:
        problems.append(f'{len(mismatched)} shapes differ: '
                        f'{_listing(mismatched)}')
    if problems and not allow_partial:
        raise ValueError(
            f'{checkpoint} does not fit the model of '
            f'{config or "the config"}:\n  ' + '\n  '.join(problems) +
            '\nIs it the checkpoint of this config? (--allow-partial '
            'evaluates it anyway.)')
    return problems


def _listing(keys: Sequence[str], limit: int = 10) -> str:
    keys = list(keys)
    more = f', ... (+{len(keys) - limit})' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more
