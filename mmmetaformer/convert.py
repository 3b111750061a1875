"""Dense-checkpoint conversion: detector / segmentor checkpoints trained with
an old framework (mmdet 2.x, mmseg 0.x, detectron2) -> mmdet 3.x / mmseg 1.x
checkpoints for this package's configs.

The command lines are ``tools/model_converters/<source>_to_<target>.py``
(:data:`CONVERTER_SCRIPTS`), one per *source format*; the backbone family
comes from the config (``model.backbone.type``), and ``--family`` checks it.
A conversion (:func:`run_conversion`):

1. reads the file with :func:`mmmetaformer.checkpoint.load_checkpoint_file`
   (``weights_only=True``; no code from the file runs) and checks that its
   keys are of the converter's source format;
2. splits the backbone's keys off and renames them with the backbone class's
   own :meth:`convert_checkpoint` (the family's official key map);
3. renames the neck and head keys by the source format's rule table
   (:class:`mmmetaformer.keymap.KeyMap`, rules as data); every key must be
   claimed by a rule or by an explicit "ignored" pattern, otherwise the
   conversion stops naming the key;
4. builds the model from the config (without downloading its ImageNet
   weights), reshapes 1x1-conv / Linear weights to the model's shapes, and
   loads the result with ``strict=True`` (``allow_partial=True``: missing
   and unexpected keys are reported instead): a converted checkpoint that
   is saved loads completely;
5. saves ``{'state_dict': ..., 'meta': ...}`` (tensors and plain types only),
   written to a temporary file and renamed.

:func:`check_load_from` and :func:`check_checkpoint_fits` are the checks
the tools run before a Runner loads a checkpoint (``load_from``,
``tools/test.py``): an official dense checkpoint that was not converted
names the converter to run, and a checkpoint that does not fit the model
lists the missing and unexpected keys.
"""
import argparse
import math
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from mmmetaformer.checkpoint import (MIN_LOADED_FRACTION, check_finite,
                                     describe_prefixes, extract_state_dict,
                                     fit_tensor, is_mmpretrain_classifier,
                                     load_checkpoint_file, split_prefix)
from mmmetaformer.identify import describe, identify
from mmmetaformer.keymap import KeyMap, Rule

Tensor = torch.Tensor
StateDict = Dict[str, Tensor]

#: Source format -> the command line that converts it.
CONVERTER_SCRIPTS = {
    'mmdet2': 'tools/model_converters/mmdet2_to_mmdet3.py',
    'mmseg0': 'tools/model_converters/mmseg0_to_mmseg1.py',
    'detectron2': 'tools/model_converters/detectron2_to_mmdet3.py',
}
#: Source format -> what it is, for help texts and messages.
SOURCE_DESCRIPTIONS = {
    'mmdet2': 'an mmdet 2.x detector checkpoint (e.g. the official '
              'PoolFormer RetinaNet / Mask R-CNN releases)',
    'mmseg0': 'an mmseg 0.x segmentor checkpoint (e.g. the official '
              'PoolFormer Semantic FPN or ResTv2 UperNet releases)',
    'detectron2': 'a detectron2 detector checkpoint (.pth; e.g. the '
                  'official ResT / ResTv2 RetinaNet and Mask R-CNN releases)',
}
#: Model keys that may be absent from a checkpoint without consequence
#: (BN counters older PyTorch versions did not save).
EXPECTED_MISSING = (r'(.*\.)?num_batches_tracked$', )


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


# ------------------------------------------------------------------ reading
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


# ---------------------------------------------------------------- the model
def load_config(config: str, cfg_options: Optional[dict] = None):
    """Load a config without its ImageNet ``Pretrained`` initialisation."""
    from mmengine.config import Config

    from mmmetaformer.launch import drop_pretrained

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
    missing = [k for k in target if k not in state_dict and not any(
        re.match(p, k) for p in EXPECTED_MISSING)]
    unexpected = [k for k in state_dict if k not in target]
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


# ------------------------------------------------- mmdet 2.x / mmseg 0.x
# Neck and head keys of mmdet 2.19 RetinaNet / Mask R-CNN (FPN, RetinaHead,
# RPNHead, Shared2FCBBoxHead, FCNMaskHead) and mmseg 0.x FPN / FPNHead /
# UPerHead / FCNHead. mmdet 3.x and mmseg 1.x kept these module names, so the
# rules keep the keys ('{0}'); listing them makes any other key (a different
# head, a different framework) stop the conversion instead of passing
# unnoticed.
_PARAM = r'\.(weight|bias)$'
_CONV = r'\.conv\.(weight|bias)$'
_CONV_BN = (r'\.(conv\.(weight|bias)|bn\.(weight|bias|running_mean|'
            r'running_var|num_batches_tracked))$')
_FPN = (rf'neck\.(lateral_convs|fpn_convs)\.\d+{_CONV}', '{0}')
MMDET2_HEAD_RULES: List[Rule] = [
    _FPN,
    (rf'bbox_head\.(cls_convs|reg_convs)\.\d+{_CONV}', '{0}'),
    (rf'bbox_head\.(retina_cls|retina_reg){_PARAM}', '{0}'),
    (rf'rpn_head\.(rpn_conv|rpn_cls|rpn_reg){_PARAM}', '{0}'),
    (rf'roi_head\.bbox_head\.(shared_fcs\.\d+|fc_cls|fc_reg){_PARAM}', '{0}'),
    (rf'roi_head\.mask_head\.convs\.\d+{_CONV}', '{0}'),
    (rf'roi_head\.mask_head\.(upsample|conv_logits){_PARAM}', '{0}'),
]
MMSEG0_HEAD_RULES: List[Rule] = [
    _FPN,
    (r'(decode_head|auxiliary_head)\.(scale_heads\.\d+\.\d+|psp_modules\.\d+'
     r'\.1|bottleneck|lateral_convs\.\d+|fpn_convs\.\d+|fpn_bottleneck|'
     rf'convs\.\d+|conv_cat){_CONV_BN}', '{0}'),
    (rf'(decode_head|auxiliary_head)\.conv_seg{_PARAM}', '{0}'),
]


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


def convert_openmmlab(state_dict: StateDict, cfg, report: ConversionReport,
                      family: Optional[str] = None) -> StateDict:
    """An mmdet 2.x / mmseg 0.x checkpoint -> the config's key names.

    ``backbone.*`` goes through the config's backbone class converter
    (official names such as PoolFormer's ``network.*``, or this package's
    names); neck and head keys through :data:`MMDET2_HEAD_RULES` /
    :data:`MMSEG0_HEAD_RULES`.
    """
    rules = MMDET2_HEAD_RULES if report.source_format == 'mmdet2' else \
        MMSEG0_HEAD_RULES
    result = convert_backbone(state_dict, cfg, report, 'backbone.', family)
    _, rest = split_prefix(state_dict, 'backbone.')
    heads, report.ignored = rename_by_rules(rest, rules,
                                            what=report.source_format)
    result.update(heads)
    return result


# ---------------------------------------------------------------- detectron2
#: detectron2 defaults of Base-RetinaNet.yaml (wofmanaf/ResT configs).
D2_RETINANET_SIZES = [[x * 2**(i / 3) for i in range(3)]
                      for x in (32, 64, 128, 256, 512)]
D2_ASPECT_RATIOS = [0.5, 1.0, 2.0]
D2_IGNORED = [
    (r'pixel_(mean|std)', 'input normalisation lives in the config\'s '
     'data_preprocessor'),
    (r'(proposal_generator\.)?anchor_generator\.cell_anchors\.\d+',
     'anchors are computed by mmdet'),
    (r'backbone\.bottom_up\.head\..*', 'ImageNet classifier, unused by the '
     'detector'),
]
#: detectron2 RetinaNet / RPN / RoI head keys -> mmdet 3.x.
D2_HEAD_RULES: List[Rule] = [
    (rf'head\.cls_subnet\.(\d+){_PARAM}',
     'bbox_head.cls_convs.{1//2}.conv.{2}'),
    (rf'head\.bbox_subnet\.(\d+){_PARAM}',
     'bbox_head.reg_convs.{1//2}.conv.{2}'),
    (r'head\.cls_score\.', 'bbox_head.retina_cls.'),
    (r'head\.bbox_pred\.', 'bbox_head.retina_reg.'),
    (r'proposal_generator\.rpn_head\.conv\.', 'rpn_head.rpn_conv.'),
    (r'proposal_generator\.rpn_head\.objectness_logits\.',
     'rpn_head.rpn_cls.'),
    (r'proposal_generator\.rpn_head\.anchor_deltas\.', 'rpn_head.rpn_reg.'),
    (rf'roi_heads\.box_head\.fc([12]){_PARAM}',
     'roi_head.bbox_head.shared_fcs.{1-1}.{2}'),
    (r'roi_heads\.box_predictor\.cls_score\.', 'roi_head.bbox_head.fc_cls.'),
    (r'roi_heads\.box_predictor\.bbox_pred\.', 'roi_head.bbox_head.fc_reg.'),
    (rf'roi_heads\.mask_head\.mask_fcn(\d){_PARAM}',
     'roi_head.mask_head.convs.{1-1}.conv.{2}'),
    (r'roi_heads\.mask_head\.deconv\.', 'roi_head.mask_head.upsample.'),
    (r'roi_heads\.mask_head\.predictor\.', 'roi_head.mask_head.conv_logits.'),
]


def d2_neck_rules(out_indices: Sequence[int]) -> List[Rule]:
    """detectron2 FPN keys -> mmdet ``neck.*`` for the config's backbone
    ``out_indices`` (FPN level L = backbone stage L - 2; lateral conv ``i``
    is the ``i``-th returned stage; P6/P7 follow the levels).

    Raises:
        ConversionError: If ``out_indices`` are not consecutive stages.
    """
    out_indices = tuple(out_indices)
    first, n = out_indices[0], len(out_indices)
    if out_indices != tuple(range(first, first + n)):
        raise ConversionError(
            f'backbone out_indices {out_indices} are not consecutive stages; '
            'a detectron2 FPN uses consecutive levels.')
    levels = f'[{first + 2}-{first + n + 1}]'
    offset = first + 2
    return [
        (rf'backbone\.fpn_lateral({levels}){_PARAM}',
         f'neck.lateral_convs.{{1-{offset}}}.conv.{{2}}'),
        (rf'backbone\.fpn_output({levels}){_PARAM}',
         f'neck.fpn_convs.{{1-{offset}}}.conv.{{2}}'),
        (rf'backbone\.top_block\.p6{_PARAM}',
         f'neck.fpn_convs.{n}.conv.{{1}}'),
        (rf'backbone\.top_block\.p7{_PARAM}',
         f'neck.fpn_convs.{n + 1}.conv.{{1}}'),
    ]


def anchor_permutation(num_sizes: int, num_ratios: int) -> torch.Tensor:
    """``perm[a_mmdet] = a_detectron2`` for the cell anchors of one level.

    detectron2 anchor ``s * R + r`` (size-major) is mmdet anchor
    ``r * S + s`` (ratio-major).
    """
    perm = torch.empty(num_sizes * num_ratios, dtype=torch.long)
    for s in range(num_sizes):
        for r in range(num_ratios):
            perm[r * num_sizes + s] = s * num_ratios + r
    return perm


def permute_anchor_channels(tensor: torch.Tensor, perm: torch.Tensor,
                            per_anchor: int) -> torch.Tensor:
    """Reorder the anchor-major output channels of a conv weight / bias."""
    num_anchors = perm.numel()
    if tensor.shape[0] != num_anchors * per_anchor:
        raise ConversionError(f'expected {num_anchors} x {per_anchor} output '
                              f'channels, got {tensor.shape[0]}')
    grouped = tensor.reshape(num_anchors, per_anchor, *tensor.shape[1:])
    return grouped[perm].reshape(tensor.shape).clone()


def _check_retinanet_anchors(cfg) -> Tuple[int, int]:
    """The config's RetinaNet anchors must be detectron2's; returns (S, R)."""
    gen = cfg.model.bbox_head.anchor_generator
    scales = gen.get('scales_per_octave')
    base = gen.get('octave_base_scale')
    strides = list(gen.get('strides', []))
    ratios = [float(r) for r in gen.get('ratios', [])]
    sizes = [[base * stride * 2**(i / scales) for i in range(scales)]
             for stride in strides] if scales and base else None
    same = (sizes is not None and len(sizes) == len(D2_RETINANET_SIZES)
            and all(math.isclose(a, b) for sa, sb in zip(sizes,
                                                         D2_RETINANET_SIZES)
                    for a, b in zip(sa, sb))
            and ratios == D2_ASPECT_RATIOS)
    if not same:
        raise ConversionError(
            'model.bbox_head.anchor_generator must match the detectron2 '
            f'RetinaNet anchors (sizes {D2_RETINANET_SIZES[0][0]:g}..512 x '
            f'2^(i/3), ratios {D2_ASPECT_RATIOS}); got octave_base_scale='
            f'{base}, scales_per_octave={scales}, strides={strides}, '
            f'ratios={ratios}.')
    return scales, len(ratios)


def _pixel_warnings(state_dict: StateDict, cfg) -> List[str]:
    warnings = []
    pre = cfg.model.get('data_preprocessor', {}) or {}
    for key, name in (('pixel_mean', 'mean'), ('pixel_std', 'std')):
        if key in state_dict and pre.get(name) is not None:
            ckpt = [float(v) for v in state_dict[key].flatten()]
            # Both are in the channel order of the network input (BGR or
            # RGB): compare them as they are.
            config = [float(v) for v in pre[name]]
            if len(ckpt) != len(config) or not all(
                    math.isclose(a, b, abs_tol=1e-3)
                    for a, b in zip(ckpt, config)):
                warnings.append(
                    f'checkpoint {key} {ckpt} differs from the config\'s '
                    f'data_preprocessor.{name} {pre[name]} '
                    f'(bgr_to_rgb={pre.get("bgr_to_rgb")}): evaluation would '
                    'see differently normalised inputs.')
    return warnings


def convert_detectron2(state_dict: StateDict, cfg, report: ConversionReport,
                       family: Optional[str] = None) -> StateDict:
    """A detectron2 detector checkpoint -> the config's mmdet 3.x keys.

    ``backbone.bottom_up.*`` goes through the backbone class converter (its
    ImageNet classifier ``head.*`` is dropped), the FPN through
    :func:`d2_neck_rules`, the heads through :data:`D2_HEAD_RULES`. RetinaNet
    classification / regression channels are reordered from detectron2's
    size-major to mmdet's ratio-major anchors
    (:func:`anchor_permutation`); the config's anchors must be
    detectron2's. Differences the weights cannot carry (ReLU before P7,
    pixel normalisation) are reported as warnings.
    """
    backbone_keys = {
        k: v
        for k, v in state_dict.items() if k.startswith('backbone.bottom_up.')
        and not k.startswith('backbone.bottom_up.head.')
    }
    result = convert_backbone(backbone_keys, cfg, report,
                              'backbone.bottom_up.', family)
    rest = {k: v for k, v in state_dict.items() if k not in backbone_keys}
    out_indices = tuple(cfg.model.backbone.get('out_indices', (0, 1, 2, 3)))
    heads, report.ignored = rename_by_rules(
        rest, d2_neck_rules(out_indices) + D2_HEAD_RULES, D2_IGNORED,
        what='detectron2')
    report.warnings += _pixel_warnings(rest, cfg)

    if 'bbox_head.retina_cls.weight' in heads:
        num_sizes, num_ratios = _check_retinanet_anchors(cfg)
        perm = anchor_permutation(num_sizes, num_ratios)
        num_classes = heads['bbox_head.retina_cls.weight'].shape[0] // (
            perm.numel())
        for key, per_anchor in (('retina_cls', num_classes),
                                ('retina_reg', 4)):
            for part in ('weight', 'bias'):
                name = f'bbox_head.{key}.{part}'
                heads[name] = permute_anchor_channels(heads[name], perm,
                                                      per_anchor)
        report.permuted.append(
            'bbox_head.retina_cls/retina_reg output channels: detectron2 '
            'size-major cell anchors -> mmdet ratio-major')
        if f'neck.fpn_convs.{len(out_indices) + 1}.conv.weight' in heads \
                and not cfg.model.neck.get('relu_before_extra_convs', False):
            report.warnings.append(
                'detectron2 applies ReLU to P6 before P7 but the config has '
                'neck.relu_before_extra_convs=False: P7 (and its '
                'detections) will differ; set it to True.')
    result.update(heads)
    return result


#: Source format -> ``convert(state_dict, cfg, report, family)``.
CONVERTERS = {
    'mmdet2': convert_openmmlab,
    'mmseg0': convert_openmmlab,
    'detectron2': convert_detectron2,
}


# ----------------------------------------------------------------- running
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


def command_line(source_format: str, argv: Optional[List[str]] = None) -> int:
    """The ``SRC CONFIG OUT [--family F] [--allow-partial]`` command line of
    the converter of ``source_format``; returns the exit code."""
    from mmmetaformer.launch import add_cfg_options_argument

    target = 'mmseg 1.x' if source_format == 'mmseg0' else 'mmdet 3.x'
    parser = argparse.ArgumentParser(
        prog=osp.basename(CONVERTER_SCRIPTS[source_format]),
        description=f'Convert {SOURCE_DESCRIPTIONS[source_format]} into a '
        f'{target} checkpoint for one of this package\'s configs. The '
        'backbone family is taken from the config.')
    parser.add_argument('src', help=f'{source_format} checkpoint (.pth)')
    parser.add_argument(
        'config', help='this package\'s config the weights are for')
    parser.add_argument('out', help='output checkpoint path')
    parser.add_argument(
        '--family',
        help='backbone family of the checkpoint (e.g. PoolFormer, ResT); '
        'checked against the config')
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='save even if keys of the model are missing or unexpected '
        '(experts; reported)')
    add_cfg_options_argument(parser)
    args = parser.parse_args(argv)
    try:
        report = run_conversion(args.src, args.config, args.out,
                                source_format, args.cfg_options, args.family,
                                args.allow_partial)
    except (ValueError, KeyError, FileNotFoundError, TypeError) as exc:
        parser.exit(2, f'{parser.prog}: error: {exc}\n')
    print(report.summary())
    print(f'Saved {args.out}')
    return 0


# ------------------------------------------------- checks before loading
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
    ``module.`` removed, wrappers unwrapped); :data:`EXPECTED_MISSING` keys
    may be absent. An unconverted official dense checkpoint names its
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
    missing = [k for k in target if k not in state_dict and not any(
        re.match(p, k) for p in EXPECTED_MISSING)]
    unexpected = [k for k in state_dict if k not in target]
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
