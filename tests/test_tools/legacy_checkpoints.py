"""Synthetic checkpoints with the key layout and shapes of the official dense
releases, written from the old frameworks' conventions (not derived from
the mmdet 3.x / mmseg 1.x models they are converted to):

* backbones: the official key lists of ``shared/reference/<variant>.keys.json``
  (the dense backbones of sail-sg/poolformer and wofmanaf/ResT);
* mmdet 2.19: ``FPN`` (``lateral_convs``/``fpn_convs`` ConvModules),
  ``RetinaHead`` (4 + 4 stacked convs, ``retina_cls``/``retina_reg``),
  ``RPNHead`` (``rpn_conv``/``rpn_cls``/``rpn_reg``), ``Shared2FCBBoxHead``
  (``shared_fcs``, ``fc_cls`` with K + 1 outputs, class-specific ``fc_reg``),
  ``FCNMaskHead`` (4 convs, ``upsample`` transposed conv, ``conv_logits``);
* mmseg 0.x: ``FPN`` and ``FPNHead`` (``scale_heads`` of ConvModule with
  SyncBN, one conv per stride-2 step, ``conv_seg``);
* detectron2: ``FPN`` (``fpn_lateral{L}``, ``fpn_output{L}``,
  ``top_block.p6/p7``), ``RetinaNetHead`` (``cls_subnet``/``bbox_subnet``
  Sequentials of conv + ReLU, ``cls_score``, ``bbox_pred``),
  ``StandardRPNHead`` (``conv``, ``objectness_logits``, ``anchor_deltas``),
  ``FastRCNNConvFCHead`` (``fc1``, ``fc2``), ``FastRCNNOutputLayers``
  (``cls_score`` K + 1, ``bbox_pred`` K x 4), ``MaskRCNNConvUpsampleHead``
  (``mask_fcn1..4``, ``deconv``, ``predictor``).

Values are seeded random numbers (float32), so every tensor is distinct.
"""
import hashlib
from typing import Dict, Sequence, Tuple

import torch

from mmmetaformer.testing import parity

Shapes = Dict[str, Tuple[int, ...]]
COCO_CLASSES = 80
FPN_CHANNELS = 256


def fill(shapes: Shapes) -> Dict[str, torch.Tensor]:
    """Deterministic random tensors (seeded by the key name)."""
    result = {}
    for key, shape in shapes.items():
        if key.endswith('num_batches_tracked'):
            result[key] = torch.tensor(1000, dtype=torch.long)
            continue
        seed = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16)
        gen = torch.Generator().manual_seed(seed)
        value = torch.randn(shape, generator=gen) * 0.05
        if key.endswith('running_var'):
            value = value.abs() + 0.5
        result[key] = value
    return result


def official_backbone(variant: str, drop: Sequence[str] = ()) -> Dict[
        str, torch.Tensor]:
    """The official dense backbone's keys (reference key list), float32,
    without the keys starting with any of ``drop``."""
    record = parity.load_keys(variant)
    shapes = {k: tuple(s) for k, s, _ in record['keys']
              if not k.startswith(tuple(drop))}
    values = fill(shapes)
    for key, shape, dtype in record['keys']:
        if key in values and dtype == 'int64':
            values[key] = torch.zeros(shape, dtype=torch.long)
    return values


def _conv(name: str, out_ch: int, in_ch: int, k: int,
          bias: bool = True) -> Shapes:
    shapes = {f'{name}.weight': (out_ch, in_ch, k, k)}
    if bias:
        shapes[f'{name}.bias'] = (out_ch, )
    return shapes


def _bn(name: str, ch: int) -> Shapes:
    shapes = {f'{name}.{p}': (ch, ) for p in ('weight', 'bias',
                                              'running_mean', 'running_var')}
    shapes[f'{name}.num_batches_tracked'] = ()
    return shapes


# ------------------------------------------------------------ mmdet 2.19
def mmdet2_fpn(in_channels: Sequence[int], extra_on_input: bool) -> Shapes:
    shapes = {}
    for i, ch in enumerate(in_channels):
        shapes.update(_conv(f'neck.lateral_convs.{i}.conv', FPN_CHANNELS, ch,
                            1))
        shapes.update(_conv(f'neck.fpn_convs.{i}.conv', FPN_CHANNELS,
                            FPN_CHANNELS, 3))
    if extra_on_input:  # add_extra_convs='on_input', num_outs=5
        n = len(in_channels)
        shapes.update(_conv(f'neck.fpn_convs.{n}.conv', FPN_CHANNELS,
                            in_channels[-1], 3))
        shapes.update(_conv(f'neck.fpn_convs.{n + 1}.conv', FPN_CHANNELS,
                            FPN_CHANNELS, 3))
    return shapes


def mmdet2_retina_head(num_classes: int = COCO_CLASSES,
                       num_anchors: int = 9) -> Shapes:
    shapes = {}
    for i in range(4):
        for branch in ('cls_convs', 'reg_convs'):
            shapes.update(_conv(f'bbox_head.{branch}.{i}.conv', FPN_CHANNELS,
                                FPN_CHANNELS, 3))
    shapes.update(_conv('bbox_head.retina_cls', num_anchors * num_classes,
                        FPN_CHANNELS, 3))
    shapes.update(_conv('bbox_head.retina_reg', num_anchors * 4,
                        FPN_CHANNELS, 3))
    return shapes


def mmdet2_mask_rcnn_heads(num_classes: int = COCO_CLASSES) -> Shapes:
    shapes = {}
    shapes.update(_conv('rpn_head.rpn_conv', FPN_CHANNELS, FPN_CHANNELS, 3))
    shapes.update(_conv('rpn_head.rpn_cls', 3, FPN_CHANNELS, 1))
    shapes.update(_conv('rpn_head.rpn_reg', 12, FPN_CHANNELS, 1))
    box = 'roi_head.bbox_head'
    shapes.update({f'{box}.shared_fcs.0.weight': (1024, FPN_CHANNELS * 49),
                   f'{box}.shared_fcs.0.bias': (1024, ),
                   f'{box}.shared_fcs.1.weight': (1024, 1024),
                   f'{box}.shared_fcs.1.bias': (1024, ),
                   f'{box}.fc_cls.weight': (num_classes + 1, 1024),
                   f'{box}.fc_cls.bias': (num_classes + 1, ),
                   f'{box}.fc_reg.weight': (num_classes * 4, 1024),
                   f'{box}.fc_reg.bias': (num_classes * 4, )})
    for i in range(4):
        shapes.update(_conv(f'roi_head.mask_head.convs.{i}.conv',
                            FPN_CHANNELS, FPN_CHANNELS, 3))
    # ConvTranspose2d weight: (in, out, k, k)
    shapes.update(_conv('roi_head.mask_head.upsample', FPN_CHANNELS,
                        FPN_CHANNELS, 2))
    shapes.update(_conv('roi_head.mask_head.conv_logits', num_classes,
                        FPN_CHANNELS, 1))
    return shapes


# ------------------------------------------------------------- mmseg 0.x
def mmseg0_semantic_fpn(in_channels: Sequence[int],
                        num_classes: int = 150) -> Shapes:
    shapes = mmdet2_fpn(in_channels, extra_on_input=False)
    channels = 128
    for i in range(4):  # feature strides 4, 8, 16, 32
        for j in range(max(1, i)):
            name = f'decode_head.scale_heads.{i}.{2 * j}'
            in_ch = FPN_CHANNELS if j == 0 else channels
            shapes.update(_conv(f'{name}.conv', channels, in_ch, 3,
                                bias=False))
            shapes.update(_bn(f'{name}.bn', channels))
    shapes.update(_conv('decode_head.conv_seg', num_classes, channels, 1))
    return shapes


# ------------------------------------------------------------ detectron2
def detectron2_fpn(in_channels: Dict[int, int], p6p7: bool) -> Shapes:
    """``in_channels``: FPN level (2..5) -> backbone channels."""
    shapes = {}
    for level, ch in in_channels.items():
        shapes.update(_conv(f'backbone.fpn_lateral{level}', FPN_CHANNELS, ch,
                            1))
        shapes.update(_conv(f'backbone.fpn_output{level}', FPN_CHANNELS,
                            FPN_CHANNELS, 3))
    if p6p7:  # LastLevelP6P7 on C5
        shapes.update(_conv('backbone.top_block.p6', FPN_CHANNELS,
                            in_channels[max(in_channels)], 3))
        shapes.update(_conv('backbone.top_block.p7', FPN_CHANNELS,
                            FPN_CHANNELS, 3))
    return shapes


def detectron2_retinanet_head(num_classes: int = COCO_CLASSES,
                              num_anchors: int = 9) -> Shapes:
    shapes = {}
    for i in range(4):
        for branch in ('cls_subnet', 'bbox_subnet'):
            shapes.update(_conv(f'head.{branch}.{2 * i}', FPN_CHANNELS,
                                FPN_CHANNELS, 3))
    shapes.update(_conv('head.cls_score', num_anchors * num_classes,
                        FPN_CHANNELS, 3))
    shapes.update(_conv('head.bbox_pred', num_anchors * 4, FPN_CHANNELS, 3))
    return shapes


def detectron2_mask_rcnn_heads(num_classes: int = COCO_CLASSES) -> Shapes:
    rpn = 'proposal_generator.rpn_head'
    shapes = {}
    shapes.update(_conv(f'{rpn}.conv', FPN_CHANNELS, FPN_CHANNELS, 3))
    shapes.update(_conv(f'{rpn}.objectness_logits', 3, FPN_CHANNELS, 1))
    shapes.update(_conv(f'{rpn}.anchor_deltas', 12, FPN_CHANNELS, 1))
    shapes.update({
        'roi_heads.box_head.fc1.weight': (1024, FPN_CHANNELS * 49),
        'roi_heads.box_head.fc1.bias': (1024, ),
        'roi_heads.box_head.fc2.weight': (1024, 1024),
        'roi_heads.box_head.fc2.bias': (1024, ),
        'roi_heads.box_predictor.cls_score.weight': (num_classes + 1, 1024),
        'roi_heads.box_predictor.cls_score.bias': (num_classes + 1, ),
        'roi_heads.box_predictor.bbox_pred.weight': (num_classes * 4, 1024),
        'roi_heads.box_predictor.bbox_pred.bias': (num_classes * 4, ),
    })
    for k in range(1, 5):
        shapes.update(_conv(f'roi_heads.mask_head.mask_fcn{k}', FPN_CHANNELS,
                            FPN_CHANNELS, 3))
    shapes.update(_conv('roi_heads.mask_head.deconv', FPN_CHANNELS,
                        FPN_CHANNELS, 2))
    shapes.update(_conv('roi_heads.mask_head.predictor', num_classes,
                        FPN_CHANNELS, 1))
    return shapes


# -------------------------------------------------------- whole checkpoints
def prefixed(prefix: str, state_dict: Dict[str, torch.Tensor]):
    return {prefix + k: v for k, v in state_dict.items()}


def poolformer_mmdet2(arch: str, detector: str) -> Dict[str, torch.Tensor]:
    """An official sail-sg/poolformer mmdet 2.19 detector state_dict.

    RetinaNet was trained with ``FORK_LAST3=1``: no ``backbone.norm0``, FPN
    on stages 1-3 (``start_level=1``: lateral conv i is stage i + 1).
    """
    dims = {'s12': [64, 128, 320, 512], 'm36': [96, 192, 384, 768]}[arch]
    if detector == 'retinanet':
        sd = prefixed('backbone.',
                      official_backbone(f'poolformer_{arch}', drop=['norm0.']))
        sd.update(fill(mmdet2_fpn(dims[1:], extra_on_input=True)))
        sd.update(fill(mmdet2_retina_head()))
    else:
        sd = prefixed('backbone.', official_backbone(f'poolformer_{arch}'))
        sd.update(fill(mmdet2_fpn(dims, extra_on_input=False)))
        sd.update(fill(mmdet2_mask_rcnn_heads()))
    return sd


def poolformer_mmseg0(arch: str, num_classes: int = 150):
    dims = {'s12': [64, 128, 320, 512], 'm36': [96, 192, 384, 768]}[arch]
    sd = prefixed('backbone.', official_backbone(f'poolformer_{arch}'))
    sd.update(fill(mmseg0_semantic_fpn(dims, num_classes)))
    return sd


def rest_detectron2(variant: str, detector: str):
    """A wofmanaf/ResT detectron2 detector state_dict (``{'model': ...}``
    content). RetinaNet: OUT_FEATURES stage2-4 (no ``norm1`` / ``norm_1``)."""
    record = parity.load_keys(variant)
    dims = {}
    for key, shape, _ in record['keys']:
        for k in (1, 2, 3, 4):
            if key in (f'stage{k}.0.norm1.weight', ):
                dims[k] = shape[0]
    if detector == 'retinanet':
        drop = ['norm1.', 'norm_1.']
        levels = {3: dims[2], 4: dims[3], 5: dims[4]}
    else:
        drop = []
        levels = {k + 1: dims[k] for k in (1, 2, 3, 4)}
    sd = prefixed('backbone.bottom_up.', official_backbone(variant, drop))
    sd.update(fill(detectron2_fpn(levels, p6p7=detector == 'retinanet')))
    if detector == 'retinanet':
        sd.update(fill(detectron2_retinanet_head()))
    else:
        sd.update(fill(detectron2_mask_rcnn_heads()))
    return sd
