"""mmmetaformer.converters.detectron2: official detectron2 ResT / ResTv2
RetinaNet and Mask R-CNN checkpoints (synthetic, official key layouts)
convert for this package's mmdet 3.x configs; RetinaNet output channels
follow the anchors."""
import pytest
import torch

from mmmetaformer.converters import detectron2 as d2
from tests.test_converters.helpers import run, same
from tests.test_tools import legacy_checkpoints as legacy


def _d2_cell_anchors(sizes, ratios):
    """detectron2's cell anchors (w, h) of one level, in its order: for each
    size, for each aspect ratio a = h / w."""
    result = []
    for size in sizes:
        for ratio in ratios:
            w = (size * size / ratio)**0.5
            result.append((w, ratio * w))
    return result


def test_retinanet_anchor_channels_follow_the_anchors():
    """Converted RetinaNet output channels must belong to the same anchor
    shape as before: checked against the anchors each framework builds."""
    from mmdet.models.task_modules.prior_generators import AnchorGenerator

    num_classes = 5
    sizes = d2.D2_RETINANET_SIZES[0]
    d2_anchors = _d2_cell_anchors(sizes, d2.D2_ASPECT_RATIOS)
    gen = AnchorGenerator(octave_base_scale=4, scales_per_octave=3,
                          ratios=[0.5, 1.0, 2.0], strides=[8])
    base = gen.gen_base_anchors()[0]
    mm_anchors = [(float(x2 - x1), float(y2 - y1)) for x1, y1, x2, y2 in base]
    # channel (a, k) of the detectron2 layer holds 1000 * a + k
    bias = torch.tensor([1000. * a + k for a in range(9)
                         for k in range(num_classes)])
    perm = d2.anchor_permutation(3, 3)
    converted = d2.permute_anchor_channels(bias, perm, num_classes)
    for a_mm, (w, h) in enumerate(mm_anchors):
        matches = [a for a, (dw, dh) in enumerate(d2_anchors)
                   if abs(dw - w) < 1e-3 and abs(dh - h) < 1e-3]
        assert len(matches) == 1
        for k in range(num_classes):
            assert converted[a_mm * num_classes + k] == 1000 * matches[0] + k


D2_CASES = [
    ('rest_small', 'retinanet', 'configs/retinanet_rest_small.py'),
    ('rest_small', 'mask_rcnn', 'configs/mask_rcnn_rest_small.py'),
    ('restv2_tiny', 'mask_rcnn', 'configs/mask_rcnn_3x_restv2_tiny.py'),
]


@pytest.mark.parametrize('variant, detector, config', D2_CASES)
def test_rest_detectron2(tmp_path, capsys, variant, detector, config):
    src = legacy.rest_detectron2(variant, detector)
    src['backbone.bottom_up.head.weight'] = torch.zeros(1000, 512)
    converted, _ = run('detectron2', src, tmp_path, config,
                       container='model')
    sd = converted['state_dict']
    assert len(sd) == len(src) - 1
    out = capsys.readouterr().out
    assert 'backbone.bottom_up.head.weight (ImageNet classifier' in out
    if detector == 'retinanet':
        # stages 2-4 -> FPN levels 3-5 -> lateral convs 0-2, P6/P7 after
        assert same(sd['neck.lateral_convs.0.conv.weight'],
                    src['backbone.fpn_lateral3.weight'])
        assert same(sd['neck.fpn_convs.3.conv.weight'],
                    src['backbone.top_block.p6.weight'])
        assert same(sd['neck.fpn_convs.4.conv.bias'],
                    src['backbone.top_block.p7.bias'])
        assert same(sd['bbox_head.cls_convs.2.conv.weight'],
                    src['head.cls_subnet.4.weight'])
        # anchors reordered: mmdet anchor 1 (ratio 0.5, 2nd scale) is
        # detectron2 anchor 3 (2nd size, ratio 0.5)
        k = 80
        assert same(sd['bbox_head.retina_cls.weight'][k:2 * k],
                    src['head.cls_score.weight'][3 * k:4 * k])
        assert same(sd['bbox_head.retina_reg.bias'][4:8],
                    src['head.bbox_pred.bias'][12:16])
        assert same(sd['backbone.norm3.weight'],
                    src['backbone.bottom_up.norm.weight'])
    else:
        assert same(sd['neck.lateral_convs.0.conv.weight'],
                    src['backbone.fpn_lateral2.weight'])
        pairs = [('rpn_head.rpn_reg.weight',
                  'proposal_generator.rpn_head.anchor_deltas.weight'),
                 ('roi_head.bbox_head.shared_fcs.1.weight',
                  'roi_heads.box_head.fc2.weight'),
                 ('roi_head.bbox_head.fc_cls.bias',
                  'roi_heads.box_predictor.cls_score.bias'),
                 ('roi_head.bbox_head.fc_reg.weight',
                  'roi_heads.box_predictor.bbox_pred.weight'),
                 ('roi_head.mask_head.convs.3.conv.weight',
                  'roi_heads.mask_head.mask_fcn4.weight'),
                 ('roi_head.mask_head.upsample.weight',
                  'roi_heads.mask_head.deconv.weight'),
                 ('roi_head.mask_head.conv_logits.bias',
                  'roi_heads.mask_head.predictor.bias')]
        for ours, theirs in pairs:
            assert same(sd[ours], src[theirs])


def test_detectron2_pixel_normalisation_mismatch_is_reported(tmp_path,
                                                             capsys):
    src = legacy.rest_detectron2('restv2_tiny', 'mask_rcnn')
    src['pixel_mean'] = torch.tensor([1., 2., 3.]).view(3, 1, 1)
    run('detectron2', src, tmp_path,
        'configs/mask_rcnn_3x_restv2_tiny.py', container='model')
    out = capsys.readouterr().out
    assert 'Ignored: pixel_mean' in out
    assert 'WARNING: checkpoint pixel_mean [1.0, 2.0, 3.0] differs' in out
