"""Running a conversion: read, convert by the source format's converter,
load strictly into the config's model, save (:func:`run_conversion`)."""
import os
import os.path as osp
from typing import Optional

import torch

from mmmetaformer.checkpoint import check_finite
from .common import (ConversionError, ConversionReport, StateDict,
                     detect_source_format, read_source)
from .detectron2 import convert_detectron2
from .model import build_model, fit_and_load, load_config
from .openmmlab import convert_openmmlab
from .scripts import CONVERTER_SCRIPTS, SOURCE_DESCRIPTIONS

#: Source format -> ``convert(state_dict, cfg, report, family)``.
CONVERTERS = {
    'mmdet2': convert_openmmlab,
    'mmseg0': convert_openmmlab,
    'detectron2': convert_detectron2,
}


def save_checkpoint(state_dict: StateDict, out: str, meta: dict) -> None:
    """Save ``{'state_dict', 'meta'}`` to a temporary file next to ``out``
    and rename it; creates the output directory."""
    directory = osp.dirname(osp.abspath(out))
    os.makedirs(directory, exist_ok=True)
    tmp = f'{out}.{os.getpid()}.partial'
    try:
        torch.save({'state_dict': state_dict, 'meta': meta}, tmp)
        os.replace(tmp, out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def dataset_meta_from(old_meta: dict) -> dict:
    """mmdet 2.x / mmseg 0.x ``meta['CLASSES']`` (and ``PALETTE``) as the
    3.x / 1.x ``dataset_meta``; a file that has a ``dataset_meta`` already
    (converted before, or saved by mmdet 3.x / mmseg 1.x) keeps it."""
    result = dict(old_meta.get('dataset_meta') or {})
    if old_meta.get('CLASSES') is not None:
        result['classes'] = list(old_meta['CLASSES'])
    if old_meta.get('PALETTE') is not None:
        result['palette'] = [list(c) for c in old_meta['PALETTE']]
    return result


def run_conversion(src: str, config: str, out: str, source_format: str,
                   cfg_options: Optional[dict] = None,
                   family: Optional[str] = None,
                   allow_partial: bool = False) -> ConversionReport:
    """Read ``src``, convert it for ``config``, verify and save to ``out``.

    Args:
        src (str): Source checkpoint path (or URL).
        config (str): Target config path.
        out (str): Output path.
        source_format (str): One of :data:`CONVERTERS`.
        cfg_options (dict, optional): Overrides merged into the config.
        family (str, optional): The backbone family of the checkpoint;
            must be the config's (default: the config's).
        allow_partial (bool): Save a checkpoint that leaves keys of the
            model missing or has unexpected ones (reported) instead of
            stopping.

    Returns:
        ConversionReport: Also printed by the command lines.

    Raises:
        ConversionError: Wrong source format, unknown keys, wrong family.
        ValueError: The result does not fit the config's model.
    """
    if source_format not in CONVERTERS:
        raise ConversionError(f'source_format must be one of '
                              f'{sorted(CONVERTERS)}, got {source_format!r}')
    state_dict, old_meta = read_source(src)
    detected = detect_source_format(state_dict)
    if detected is not None and detected != source_format:
        raise ConversionError(
            f'{src} looks like {SOURCE_DESCRIPTIONS[detected]}, not '
            f'{source_format}: use python {CONVERTER_SCRIPTS[detected]}.')
    check_finite(state_dict, src)
    cfg = load_config(config, cfg_options)
    report = ConversionReport(source_format=source_format)
    converted = CONVERTERS[source_format](state_dict, cfg, report, family)
    model = build_model(cfg)
    fitted = fit_and_load(model, converted, report, allow_partial)
    meta = dict(
        converted_from=osp.basename(src),
        source_format=source_format,
        config=osp.basename(config),
        converter=f'mmmetaformer {CONVERTER_SCRIPTS[source_format]}',
    )
    dataset_meta = dataset_meta_from(old_meta)
    if dataset_meta:
        meta['dataset_meta'] = dataset_meta
    save_checkpoint(fitted, out, meta)
    return report
