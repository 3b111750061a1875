"""The target model of a conversion: the config (without its ImageNet
``Pretrained`` initialisation), the model built from it, and the strict
load of the converted keys into it."""
from typing import Optional

import torch

from mmmetaformer.checkpoint import fit_tensor
from .common import (ConversionError, ConversionReport, StateDict,
                     missing_and_unexpected)


def load_config(config: str, cfg_options: Optional[dict] = None):
    """Load a config without its ImageNet ``Pretrained`` initialisation."""
    from mmengine.config import Config

    from mmmetaformer.runner.pretrained import drop_pretrained

    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    drop_pretrained(cfg.model)
    return cfg


def build_model(cfg):
    """Build ``cfg.model`` with the registry of the config's scope."""
    import mmmetaformer  # noqa: F401  (registers the backbones)
    from mmengine.registry import init_default_scope

    scope = cfg.get('default_scope')
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    elif scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        raise ConversionError("config default_scope must be 'mmdet' or "
                              f"'mmseg', got {scope!r}")
    init_default_scope(scope)
    return MODELS.build(cfg.model)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside DDP-style wrappers and test-time-augmentation
    models, as mmengine's ``load_state_dict`` sees it."""
    from mmengine.model import BaseTTAModel, is_model_wrapper
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def fit_and_load(model: torch.nn.Module, state_dict: StateDict,
                 report: ConversionReport,
                 allow_partial: bool = False) -> StateDict:
    """Adapt 1x1-conv / Linear shapes to ``model`` and load strictly.

    Args:
        model (nn.Module): The config's model.
        state_dict (dict): Converted keys.
        report (ConversionReport): Updated in place.
        allow_partial (bool): Report missing / unexpected keys as warnings
            and load the rest instead of raising.

    Returns:
        dict: What was loaded (the model's keys, shapes and dtypes).

    Raises:
        ValueError: On a missing or unexpected key (unless
            ``allow_partial``), or a shape mismatch (the message names the
            keys).
    """
    target = model.state_dict()
    missing, unexpected = missing_and_unexpected(target, state_dict)
    if missing or unexpected:
        message = (f'{len(missing)} missing keys {missing[:8]}, '
                   f'{len(unexpected)} unexpected keys {unexpected[:8]}')
        if not allow_partial:
            raise ValueError(
                'The converted checkpoint does not match the config\'s '
                f'model: {message}. (--allow-partial loads it anyway.)')
        report.warnings.append(f'partial load: {message}')
        report.strict = False
    fitted = {}
    for key, dst in target.items():
        if key not in state_dict:
            continue
        value, reshaped = fit_tensor(
            key, state_dict[key], dst,
            'Is the config the one the checkpoint was trained with?')
        if reshaped:
            report.reshaped.append(key)
        fitted[key] = value.to(dst.dtype).contiguous()
    model.load_state_dict(fitted, strict=report.strict)
    report.converted = len(fitted)
    return fitted
