"""What the dense-checkpoint converters share.

A converter turns a detector / segmentor checkpoint trained with an old
framework (mmdet 2.x, mmseg 0.x, detectron2) into an mmdet 3.x / mmseg 1.x
checkpoint for one of this package's configs:

1. read the file with ``torch.load(weights_only=True)`` (no code from the
   file is run);
2. split the backbone's keys off and rename them with the backbone class's
   own :meth:`convert_checkpoint` (the key maps live in one place, the
   backbone module);
3. rename the neck and head keys by the converter's rules; every key must be
   claimed by a rule or by an explicit "ignored" pattern, otherwise the
   conversion stops naming the key;
4. build the model from the config (without downloading its ImageNet
   weights), reshape 1x1-conv / Linear weights to the model's shapes, and
   load the result with ``strict=True``: a converted checkpoint that is
   saved always loads completely;
5. save ``{'state_dict': ..., 'meta': ...}`` (tensors and plain types only).
"""
import os
import os.path as osp
import re
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from mmmetaformer.checkpoint import (  # noqa: E402
    fit_tensor, load_checkpoint_file, split_prefix)
from mmmetaformer.launch import drop_pretrained  # noqa: E402

Tensor = torch.Tensor
StateDict = Dict[str, Tensor]
#: A renaming rule: (regex matched with re.fullmatch, replacement string or
#: function of the match returning the new key).
Rule = Tuple[str, object]


@dataclass
class ConversionReport:
    """What a conversion did.

    Attributes:
        source_format (str): ``mmdet2``, ``mmseg0`` or ``detectron2``.
        backbone_format (str): What the backbone class detected.
        converted (int): Keys written.
        ignored (list): Source keys deliberately dropped, with the reason.
        reshaped (list): Keys whose 1x1-conv / Linear shape was adapted.
        permuted (list): Keys whose output channels were reordered.
        warnings (list): Differences between the source model and the
            config that the weights cannot express (e.g. pixel format).
    """
    source_format: str
    backbone_format: str = ''
    converted: int = 0
    ignored: List[str] = field(default_factory=list)
    reshaped: List[str] = field(default_factory=list)
    permuted: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f'Converted {self.converted} tensors from a '
                 f'{self.source_format} checkpoint (backbone keys: '
                 f'{self.backbone_format}); loaded with strict=True.']
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


# ------------------------------------------------------------------ reading
def read_checkpoint(path: str) -> Tuple[StateDict, dict]:
    """Read a checkpoint file; return its state_dict and its ``meta``.

    Accepts ``{'state_dict': ...}`` (mmdet/mmseg), ``{'model': ...}``
    (detectron2 ``.pth``) and flat state_dicts. detectron2 ``.pkl`` files
    (pickled numpy arrays) are refused: unpickling them could run code.
    """
    if path.endswith('.pkl'):
        raise ValueError(
            f'{path}: .pkl checkpoints are pickles that may run code when '
            'read; convert them to a .pth state_dict in a trusted '
            'environment first.')
    try:
        ckpt = load_checkpoint_file(path)
    except Exception as exc:  # weights_only refuses unknown types
        raise ValueError(
            f'Could not read {path} with torch.load(weights_only=True): '
            f'{exc}') from exc
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    for container in ('state_dict', 'model'):
        if isinstance(ckpt.get(container), dict):
            ckpt = ckpt[container]
            break
    state_dict = {}
    for key, value in ckpt.items():
        if isinstance(value, Tensor):
            if key.startswith('module.'):
                key = key[len('module.'):]
            state_dict[key] = value
    if not state_dict:
        raise ValueError(f'{path} holds no tensors.')
    return state_dict, meta


def apply_rules(state_dict: StateDict,
                rules: Sequence[Rule],
                ignore: Sequence[Tuple[str, str]] = (),
                what: str = 'checkpoint') -> Tuple[StateDict, List[str]]:
    """Rename every key by the first rule whose regex matches it fully.

    Args:
        state_dict (dict): Source keys.
        rules (Sequence[Rule]): ``(regex, replacement)``; the replacement is
            an ``re`` template or a function of the match.
        ignore (Sequence[tuple]): ``(regex, reason)`` of keys to drop.
        what (str): Name of the source, for error messages.

    Returns:
        tuple: The renamed dict and ``'key (reason)'`` for each dropped key.

    Raises:
        KeyError: If a key matches no rule and no ignore pattern, or two
            keys map to the same name.
    """
    compiled = [(re.compile(p), r) for p, r in rules]
    ignored_patterns = [(re.compile(p), why) for p, why in ignore]
    result, ignored, unknown = {}, [], []
    for key, value in state_dict.items():
        for pattern, repl in compiled:
            match = pattern.fullmatch(key)
            if match:
                new = repl(match) if callable(repl) else match.expand(repl)
                if new in result:
                    raise KeyError(f'{what}: two keys map to {new!r}.')
                result[new] = value
                break
        else:
            why = next((w for p, w in ignored_patterns if p.fullmatch(key)),
                       None)
            if why is None:
                unknown.append(key)
            else:
                ignored.append(f'{key} ({why})')
    if unknown:
        raise KeyError(
            f'{what}: {len(unknown)} keys match no conversion rule, e.g. '
            f'{unknown[:8]}. Is it the right converter and config?')
    return result, ignored


def convert_backbone(backbone_cls, state_dict: StateDict) -> Tuple[StateDict,
                                                                   str]:
    """Rename backbone keys with the class's own converter."""
    converted, key_format = backbone_cls.convert_checkpoint(state_dict)
    return converted, key_format


# ------------------------------------------------------------------ the model
def load_config(config: str, cfg_options: Optional[dict] = None):
    """Load a config without its ImageNet ``Pretrained`` initialisation."""
    from mmengine.config import Config

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
        raise ValueError(f"config default_scope must be 'mmdet' or 'mmseg', "
                         f'got {scope!r}')
    init_default_scope(scope)
    return MODELS.build(cfg.model)


def backbone_class(cfg):
    """The package backbone class named by ``cfg.model.backbone.type``."""
    from mmmetaformer.registry import MODELS

    name = cfg.model.backbone.type
    cls = MODELS.get(name.split('.')[-1])
    if cls is None or not hasattr(cls, 'convert_checkpoint'):
        raise ValueError(f'model.backbone.type {name!r} is not a backbone of '
                         'this package.')
    return cls


def fit_and_load(model: torch.nn.Module, state_dict: StateDict,
                 report: ConversionReport) -> StateDict:
    """Adapt 1x1-conv / Linear shapes to ``model`` and load strictly.

    Raises:
        ValueError: On a missing or unexpected key, or a shape mismatch
            (the message names the keys).
    """
    target = model.state_dict()
    missing = [k for k in target if k not in state_dict]
    unexpected = [k for k in state_dict if k not in target]
    if missing or unexpected:
        raise ValueError(
            f'The converted checkpoint does not match the config\'s model: '
            f'{len(missing)} missing keys {missing[:8]}, {len(unexpected)} '
            f'unexpected keys {unexpected[:8]}.')
    fitted = {}
    for key, dst in target.items():
        value, reshaped = fit_tensor(
            key, state_dict[key], dst,
            'Is the config the one the checkpoint was trained with?')
        if reshaped:
            report.reshaped.append(key)
        fitted[key] = value.to(dst.dtype).contiguous()
    model.load_state_dict(fitted, strict=True)
    report.converted = len(fitted)
    return fitted


def save_checkpoint(state_dict: StateDict, out: str, meta: dict) -> None:
    """Save ``{'state_dict', 'meta'}``; creates the output directory."""
    directory = osp.dirname(osp.abspath(out))
    os.makedirs(directory, exist_ok=True)
    torch.save({'state_dict': state_dict, 'meta': meta}, out)


def dataset_meta_from(old_meta: dict) -> dict:
    """mmdet 2.x / mmseg 0.x ``meta['CLASSES']`` (and ``PALETTE``) as the
    3.x / 1.x ``dataset_meta``."""
    result = {}
    if old_meta.get('CLASSES') is not None:
        result['classes'] = list(old_meta['CLASSES'])
    if old_meta.get('PALETTE') is not None:
        result['palette'] = [list(c) for c in old_meta['PALETTE']]
    return result


def run_conversion(convert: Callable, src: str, config: str, out: str,
                   source_format: str,
                   cfg_options: Optional[dict] = None) -> ConversionReport:
    """Read ``src``, convert it for ``config``, verify and save to ``out``.

    Args:
        convert (Callable): ``convert(state_dict, cfg, report) -> state_dict``
            in the config's key names.
        src (str): Source checkpoint path.
        config (str): Target config path.
        out (str): Output path.
        source_format (str): For the report and the saved ``meta``.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        ConversionReport: Also printed by the command-line scripts.
    """
    state_dict, old_meta = read_checkpoint(src)
    cfg = load_config(config, cfg_options)
    report = ConversionReport(source_format=source_format)
    converted = convert(state_dict, cfg, report)
    model = build_model(cfg)
    fitted = fit_and_load(model, converted, report)
    meta = dict(
        converted_from=osp.basename(src),
        source_format=source_format,
        config=osp.basename(config),
        converter='mmmetaformer tools/model_converters',
    )
    dataset_meta = dataset_meta_from(old_meta)
    if dataset_meta:
        meta['dataset_meta'] = dataset_meta
    save_checkpoint(fitted, out, meta)
    return report


def command_line(description: str, convert: Callable, source_format: str,
                 argv: Optional[List[str]] = None) -> int:
    """The shared ``SRC CONFIG OUT`` command line of the converters."""
    import argparse

    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help=f'{source_format} checkpoint (.pth)')
    parser.add_argument(
        'config', help='this package\'s config the weights are for')
    parser.add_argument('out', help='output checkpoint path')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    args = parser.parse_args(argv)
    report = run_conversion(convert, args.src, args.config, args.out,
                            source_format, args.cfg_options)
    print(report.summary())
    print(f'Saved {args.out}')
    return 0


# ------------------------------------------------- mmdet 2.x / mmseg 0.x
# Neck and head keys of mmdet 2.19 RetinaNet / Mask R-CNN (FPN, RetinaHead,
# RPNHead, Shared2FCBBoxHead, FCNMaskHead) and mmseg 0.x FPN / FPNHead /
# UPerHead / FCNHead. mmdet 3.x and mmseg 1.x kept these module names, so the
# rules keep the keys; listing them makes any other key (a different head, a
# different framework) stop the conversion instead of passing unnoticed.
_CONV = r'conv\.(weight|bias)'
_CONV_BN = (r'(conv\.(weight|bias)|bn\.(weight|bias|running_mean|'
            r'running_var|num_batches_tracked))')
MMDET2_HEAD_RULES: List[Rule] = [
    (rf'neck\.(lateral_convs|fpn_convs)\.\d+\.{_CONV}', r'\g<0>'),
    (rf'bbox_head\.(cls_convs|reg_convs)\.\d+\.{_CONV}', r'\g<0>'),
    (r'bbox_head\.(retina_cls|retina_reg)\.(weight|bias)', r'\g<0>'),
    (r'rpn_head\.(rpn_conv|rpn_cls|rpn_reg)\.(weight|bias)', r'\g<0>'),
    (r'roi_head\.bbox_head\.(shared_fcs\.\d+|fc_cls|fc_reg)\.(weight|bias)',
     r'\g<0>'),
    (rf'roi_head\.mask_head\.convs\.\d+\.{_CONV}', r'\g<0>'),
    (r'roi_head\.mask_head\.(upsample|conv_logits)\.(weight|bias)', r'\g<0>'),
]
MMSEG0_HEAD_RULES: List[Rule] = [
    (rf'neck\.(lateral_convs|fpn_convs)\.\d+\.{_CONV}', r'\g<0>'),
    (r'(decode_head|auxiliary_head)\.(scale_heads\.\d+\.\d+|psp_modules\.\d+'
     r'\.1|bottleneck|lateral_convs\.\d+|fpn_convs\.\d+|fpn_bottleneck|'
     rf'convs\.\d+|conv_cat)\.{_CONV_BN}', r'\g<0>'),
    (r'(decode_head|auxiliary_head)\.conv_seg\.(weight|bias)', r'\g<0>'),
]


def convert_openmmlab(state_dict: StateDict, cfg, report: ConversionReport,
                      head_rules: Sequence[Rule]) -> StateDict:
    """An mmdet 2.x / mmseg 0.x checkpoint -> the config's key names.

    ``backbone.*`` goes through the config's backbone class converter
    (official names such as PoolFormer's ``network.*``, or this package's
    names); neck and head keys through ``head_rules``.
    """
    backbone, rest = split_prefix(state_dict, 'backbone.')
    if not backbone:
        raise KeyError('The checkpoint has no backbone.* keys: is it an '
                       'mmdet/mmseg detector or segmentor checkpoint?')
    converted, report.backbone_format = convert_backbone(
        backbone_class(cfg), backbone)
    result = {f'backbone.{k}': v for k, v in converted.items()}
    heads, report.ignored = apply_rules(rest, head_rules,
                                        what=report.source_format)
    result.update(heads)
    return result
