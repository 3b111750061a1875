"""Convert an official ResT / ResTv2 detectron2 checkpoint (wofmanaf/ResT
``object_detection``: RetinaNet or Mask R-CNN with FPN) to an mmdet 3.x
checkpoint for this package's config.

Usage::

    python tools/model_converters/rest_detectron2_to_mmdet3.py \\
        model_final.pth configs/mask_rcnn_rest_small.py \\
        checkpoints/mask_rcnn_rest_small_mmdet3.pth

Key mapping (detectron2 -> mmdet 3.x), all weights carried over:

=========================================  ===================================
detectron2                                 mmdet 3.x
=========================================  ===================================
``backbone.bottom_up.*``                   ``backbone.*`` (renamed by
                                           ``ResT``/``ResTV2``
                                           ``.convert_checkpoint``)
``backbone.fpn_lateral{L}``                ``neck.lateral_convs.{i}.conv``
``backbone.fpn_output{L}``                 ``neck.fpn_convs.{i}.conv``
``backbone.top_block.p6`` / ``p7``         ``neck.fpn_convs.{n}`` / ``{n+1}``
``head.cls_subnet.{2j}``                   ``bbox_head.cls_convs.{j}.conv``
``head.bbox_subnet.{2j}``                  ``bbox_head.reg_convs.{j}.conv``
``head.cls_score`` / ``head.bbox_pred``    ``bbox_head.retina_cls`` /
                                           ``retina_reg`` (anchors reordered)
``proposal_generator.rpn_head.conv``       ``rpn_head.rpn_conv``
``...rpn_head.objectness_logits``          ``rpn_head.rpn_cls``
``...rpn_head.anchor_deltas``              ``rpn_head.rpn_reg``
``roi_heads.box_head.fc1`` / ``fc2``       ``roi_head.bbox_head.shared_fcs.0``
                                           / ``.1``
``roi_heads.box_predictor.cls_score``      ``roi_head.bbox_head.fc_cls``
``roi_heads.box_predictor.bbox_pred``      ``roi_head.bbox_head.fc_reg``
``roi_heads.mask_head.mask_fcn{k}``        ``roi_head.mask_head.convs.{k-1}
                                           .conv``
``roi_heads.mask_head.deconv``             ``roi_head.mask_head.upsample``
``roi_heads.mask_head.predictor``          ``roi_head.mask_head.conv_logits``
=========================================  ===================================

``L`` is the FPN level (2..5 = backbone stage 0..3) and ``i`` the position of
that stage in the config's ``backbone.out_indices``.

Conventions that the two frameworks share, so nothing is changed:

* class order: both sort the COCO categories by id; the Fast R-CNN
  classifier has K + 1 outputs with the background **last** in both
  (detectron2 ``FastRCNNOutputLayers``: labels in [0, K], K = background;
  mmdet 3.x ``BBoxHead``: ``num_classes`` = background); the box regressor is
  class-specific (K x 4, class-major) in both; RetinaNet uses sigmoid
  classifiers without a background channel in both;
* box coding: RetinaNet and RPN deltas unscaled in both; RoI head weights
  (10, 10, 5, 5) = mmdet's ``target_stds`` (0.1, 0.1, 0.2, 0.2);
* RPN anchors: one size per level and 3 aspect ratios: the same order.

What is changed:

* RetinaNet anchors: detectron2 enumerates the 9 cell anchors size-major
  (``for size: for ratio``), mmdet ratio-major (``scale_major=True`` builds
  ``ratios[:, None] * scales[None, :]``). The channels of ``cls_score``
  (anchor-major, K per anchor) and ``bbox_pred`` (4 per anchor) are
  reordered. The config's anchor generator must have the detectron2 sizes
  (``octave_base_scale * stride`` = 32 .. 512, 3 scales per octave) and
  ratios (0.5, 1, 2); otherwise the conversion stops.

What cannot be carried by weights (reported as warnings):

* detectron2's ``LastLevelP6P7`` applies a ReLU to P6 before P7; mmdet does
  so only with ``neck.relu_before_extra_convs=True``.
* pixel normalisation: the ResT v1 configs use detectron2's default BGR input
  with mean (103.53, 116.28, 123.675) and std 1; the ResTv2 configs RGB with
  ImageNet mean/std. If the checkpoint holds ``pixel_mean``/``pixel_std``
  (older detectron2 versions saved them) they are compared with the config's
  ``data_preprocessor``.
* ``anchor_generator.cell_anchors.*`` (old detectron2 buffers) and the
  ImageNet classifier ``backbone.bottom_up.head.*`` are dropped.
"""
import math
import os.path as osp
import sys
from typing import List, Tuple

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from conversion import (apply_rules, backbone_class,  # noqa: E402
                        command_line, convert_backbone, split_prefix)

#: detectron2 defaults of Base-RetinaNet.yaml (wofmanaf/ResT configs).
D2_RETINANET_SIZES = [[x * 2**(i / 3) for i in range(3)]
                      for x in (32, 64, 128, 256, 512)]
D2_ASPECT_RATIOS = [0.5, 1.0, 2.0]

_IGNORED = [
    (r'pixel_(mean|std)', 'input normalisation lives in the config\'s '
     'data_preprocessor'),
    (r'(proposal_generator\.)?anchor_generator\.cell_anchors\.\d+',
     'anchors are computed by mmdet'),
]


def _neck_rules(out_indices: Tuple[int, ...]) -> List[tuple]:
    """FPN rules for the config's backbone ``out_indices``."""
    level_to_index = {stage + 2: i for i, stage in enumerate(out_indices)}
    n = len(out_indices)

    def fpn(kind):
        def repl(m):
            level = int(m.group(1))
            if level not in level_to_index:
                raise KeyError(
                    f'{m.group(0)}: FPN level {level} (backbone stage '
                    f'{level - 2}) is not in the config\'s backbone '
                    f'out_indices {out_indices}.')
            return (f'neck.{kind}.{level_to_index[level]}.conv.'
                    f'{m.group(2)}')
        return repl

    return [
        (r'backbone\.fpn_lateral(\d)\.(weight|bias)', fpn('lateral_convs')),
        (r'backbone\.fpn_output(\d)\.(weight|bias)', fpn('fpn_convs')),
        (r'backbone\.top_block\.p6\.(weight|bias)',
         lambda m: f'neck.fpn_convs.{n}.conv.{m.group(1)}'),
        (r'backbone\.top_block\.p7\.(weight|bias)',
         lambda m: f'neck.fpn_convs.{n + 1}.conv.{m.group(1)}'),
    ]


HEAD_RULES = [
    (r'head\.cls_subnet\.(\d+)\.(weight|bias)',
     lambda m: f'bbox_head.cls_convs.{int(m.group(1)) // 2}.conv.'
     f'{m.group(2)}'),
    (r'head\.bbox_subnet\.(\d+)\.(weight|bias)',
     lambda m: f'bbox_head.reg_convs.{int(m.group(1)) // 2}.conv.'
     f'{m.group(2)}'),
    (r'head\.cls_score\.(weight|bias)', r'bbox_head.retina_cls.\1'),
    (r'head\.bbox_pred\.(weight|bias)', r'bbox_head.retina_reg.\1'),
    (r'proposal_generator\.rpn_head\.conv\.(weight|bias)',
     r'rpn_head.rpn_conv.\1'),
    (r'proposal_generator\.rpn_head\.objectness_logits\.(weight|bias)',
     r'rpn_head.rpn_cls.\1'),
    (r'proposal_generator\.rpn_head\.anchor_deltas\.(weight|bias)',
     r'rpn_head.rpn_reg.\1'),
    (r'roi_heads\.box_head\.fc([12])\.(weight|bias)',
     lambda m: f'roi_head.bbox_head.shared_fcs.{int(m.group(1)) - 1}.'
     f'{m.group(2)}'),
    (r'roi_heads\.box_predictor\.cls_score\.(weight|bias)',
     r'roi_head.bbox_head.fc_cls.\1'),
    (r'roi_heads\.box_predictor\.bbox_pred\.(weight|bias)',
     r'roi_head.bbox_head.fc_reg.\1'),
    (r'roi_heads\.mask_head\.mask_fcn(\d)\.(weight|bias)',
     lambda m: f'roi_head.mask_head.convs.{int(m.group(1)) - 1}.conv.'
     f'{m.group(2)}'),
    (r'roi_heads\.mask_head\.deconv\.(weight|bias)',
     r'roi_head.mask_head.upsample.\1'),
    (r'roi_heads\.mask_head\.predictor\.(weight|bias)',
     r'roi_head.mask_head.conv_logits.\1'),
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
        raise ValueError(f'expected {num_anchors} x {per_anchor} output '
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
        raise ValueError(
            'model.bbox_head.anchor_generator must match the detectron2 '
            f'RetinaNet anchors (sizes {D2_RETINANET_SIZES[0][0]:g}..512 x '
            f'2^(i/3), ratios {D2_ASPECT_RATIOS}); got octave_base_scale='
            f'{base}, scales_per_octave={scales}, strides={strides}, '
            f'ratios={ratios}.')
    return scales, len(ratios)


def _pixel_warnings(state_dict, cfg) -> List[str]:
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


def convert(state_dict, cfg, report):
    """detectron2 ResT/ResTv2 detector keys -> the config's mmdet 3.x keys."""
    backbone, rest = split_prefix(state_dict, 'backbone.bottom_up.')
    if not backbone:
        raise KeyError('The checkpoint has no backbone.bottom_up.* keys: is '
                       'it a detectron2 ResT checkpoint?')
    classifier = [k for k in backbone if k.startswith('head.')]
    for key in classifier:
        backbone.pop(key)
        report.ignored.append(f'backbone.bottom_up.{key} (ImageNet '
                              'classifier, unused by the detector)')
    converted, report.backbone_format = convert_backbone(
        backbone_class(cfg), backbone)
    result = {f'backbone.{k}': v for k, v in converted.items()}

    out_indices = tuple(cfg.model.backbone.get('out_indices', (0, 1, 2, 3)))
    rules = _neck_rules(out_indices) + HEAD_RULES
    heads, ignored = apply_rules(rest, rules, _IGNORED, what='detectron2')
    report.ignored += ignored
    report.warnings += _pixel_warnings(rest, cfg)

    if 'bbox_head.retina_cls.weight' in heads:
        num_sizes, num_ratios = _check_retinanet_anchors(cfg)
        perm = anchor_permutation(num_sizes, num_ratios)
        num_anchors = perm.numel()
        num_classes = heads['bbox_head.retina_cls.weight'].shape[0] // (
            num_anchors)
        for key, per_anchor in (('retina_cls', num_classes),
                                ('retina_reg', 4)):
            for part in ('weight', 'bias'):
                name = f'bbox_head.{key}.{part}'
                heads[name] = permute_anchor_channels(heads[name], perm,
                                                      per_anchor)
        report.permuted.append(
            'bbox_head.retina_cls/retina_reg output channels: detectron2 '
            'size-major cell anchors -> mmdet ratio-major')
        if 'neck.fpn_convs.%d.conv.weight' % (len(out_indices) + 1) in heads \
                and not cfg.model.neck.get('relu_before_extra_convs', False):
            report.warnings.append(
                'detectron2 applies ReLU to P6 before P7 but the config has '
                'neck.relu_before_extra_convs=False: P7 (and its '
                'detections) will differ; set it to True.')
    result.update(heads)
    return result


def main(argv=None):
    return command_line(__doc__.splitlines()[0], convert, 'detectron2', argv)


if __name__ == '__main__':
    sys.exit(main())
