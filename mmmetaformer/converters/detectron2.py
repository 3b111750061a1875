"""detectron2 detector checkpoints (source format ``detectron2``; the
official ResT / ResTv2 RetinaNet and Mask R-CNN releases): FPN, RetinaNet,
RPN and RoI head keys renamed to mmdet 3.x, RetinaNet output channels
reordered to mmdet's anchor order (:func:`convert_detectron2`)."""
import math
from typing import List, Optional, Sequence, Tuple

import torch

from mmmetaformer.keymap import Rule
from .backbone import convert_backbone
from .common import (_PARAM, ConversionError, ConversionReport, StateDict,
                     rename_by_rules)

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
