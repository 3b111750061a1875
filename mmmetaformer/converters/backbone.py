"""The backbone part of every conversion: the config's backbone class
(checked against ``--family``) renames the backbone keys with its own
official key map (``convert_checkpoint``)."""
from typing import List, Optional

from mmmetaformer.checkpoint import split_prefix
from mmmetaformer.identify import describe, identify
from .common import ConversionError, ConversionReport, StateDict
from .scripts import SOURCE_DESCRIPTIONS


def families() -> List[str]:
    """Names of this package's backbones that have an official-key map."""
    from mmmetaformer.registry import MODELS
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if hasattr(cls, 'convert_checkpoint'))


def backbone_class(cfg, family: Optional[str] = None):
    """The backbone class named by ``cfg.model.backbone.type``.

    Args:
        cfg (mmengine.Config): The target config.
        family (str, optional): The family the user says the checkpoint is
            (``--family``); must be the config's.

    Raises:
        ConversionError: If the config's backbone is not one of this
            package's, or is not ``family``.
    """
    import mmmetaformer  # noqa: F401
    from mmmetaformer.registry import MODELS

    name = cfg.model.backbone.type.split('.')[-1]
    cls = MODELS.get(name)
    if cls is None or not hasattr(cls, 'convert_checkpoint'):
        raise ConversionError(
            f'model.backbone.type {cfg.model.backbone.type!r} is not a '
            f'backbone of this package; valid: {families()}.')
    if family is not None:
        if MODELS.get(family) is None:
            raise ConversionError(
                f'--family {family!r} is not a backbone of this package; '
                f'valid: {families()}.')
        if MODELS.get(family) is not cls:
            raise ConversionError(
                f'--family {family} but the config\'s backbone is {name}: '
                'the config must be the one for the checkpoint\'s model.')
    return cls


def convert_backbone(state_dict: StateDict, cfg, report: ConversionReport,
                     prefix: str, family: Optional[str]) -> StateDict:
    """Rename the keys under ``prefix`` with the config's backbone class
    converter; returns them under ``backbone.``."""
    backbone, _ = split_prefix(state_dict, prefix)
    if not backbone:
        raise ConversionError(
            f'The checkpoint has no {prefix}* keys: is it '
            f'{SOURCE_DESCRIPTIONS[report.source_format]}?')
    cls = backbone_class(cfg, family)
    report.family = cls.__name__
    identity = identify(backbone, prefer=cls.__name__)
    if identity is not None and identity.family != cls.__name__:
        raise ConversionError(
            f'The checkpoint\'s {prefix}* keys are {describe(identity)}, '
            f'but the config\'s backbone is {cls.__name__}: use a config '
            f'with a {identity.family} backbone (arch {identity.arch!r}).')
    converted, report.backbone_format = cls.convert_checkpoint(backbone)
    return {f'backbone.{k}': v for k, v in converted.items()}
