"""Detectron2RetinaHead: detectron2's RetinaNet post-processing (NMS on the
unclipped boxes, then clip to the image and drop empty boxes). The expected
boxes are worked out by hand below."""
import pytest
import torch

pytest.importorskip('mmdet')
from mmengine.config import ConfigDict  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

from mmmetaformer.models.dense_heads import Detectron2RetinaHead  # noqa

TEST_CFG = dict(nms_pre=1000, min_bbox_size=-1, score_thr=0.05,
                nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)
CODER = dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
             target_stds=[1.0] * 4, clip_border=False)


def build_head(**overrides):
    kwargs = dict(num_classes=2, in_channels=8, stacked_convs=1,
                  feat_channels=8, bbox_coder=CODER, test_cfg=TEST_CFG)
    kwargs.update(overrides)
    kwargs['test_cfg'] = ConfigDict(kwargs['test_cfg'])  # as a detector
    return Detectron2RetinaHead(**kwargs)


def candidates():
    """Boxes in the resized image (scale factor 2 of a 200 x 100 image):
    A and B leave the image on the left: unclipped IoU 4800 / 10800 =
    0.44 (both survive NMS 0.5), clipped first 3600 / 4800 = 0.75 (B
    would be suppressed); C lies right of the image (empty once clipped);
    D is inside."""
    results = InstanceData()
    results.bboxes = torch.tensor([[-100., 20., 60., 80.],
                                   [-20., 20., 80., 80.],
                                   [420., 10., 500., 50.],
                                   [100., 100., 140., 160.]])
    results.scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    results.labels = torch.tensor([0, 0, 1, 1])
    return results


META = dict(ori_shape=(100, 200), img_shape=(200, 400),
            scale_factor=(2.0, 2.0))


@pytest.mark.parametrize('rescale, boxes', [
    # A, B rescaled by 1/2 and clipped to the 200 x 100 image; C dropped
    (True, [[0., 10., 30., 40.], [0., 10., 40., 40.], [50., 50., 70., 80.]]),
    # without rescaling: clipped to the 400 x 200 network input
    (False, [[0., 20., 60., 80.], [0., 20., 80., 80.],
             [100., 100., 140., 160.]]),
])
def test_nms_before_clipping_then_empty_boxes_dropped(rescale, boxes):
    head = build_head()
    out = head._bbox_post_process(candidates(), head.test_cfg,
                                  rescale=rescale, img_meta=META)
    torch.testing.assert_close(out.bboxes, torch.tensor(boxes))
    torch.testing.assert_close(out.scores, torch.tensor([0.9, 0.8, 0.6]))
    assert out.labels.tolist() == [0, 0, 1]


def test_decoding_does_not_clip():
    """The candidates NMS sees keep their extent outside the image (one
    level, one anchor; mmdet's default coder gives [0, 0, 16, 16])."""
    head = build_head(num_classes=1, anchor_generator=dict(
        type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
        ratios=[1.0], strides=[8]))
    cls = torch.full((1, 1, 2, 2), -10.0)
    cls[0, 0, 0, 0] = 3.0  # the anchor at (0, 0): [-16, -16, 16, 16]
    reg = torch.zeros(1, 4, 2, 2)
    meta = dict(ori_shape=(16, 16), img_shape=(16, 16),
                scale_factor=(1.0, 1.0))
    [out] = head.predict_by_feat([cls], [reg], batch_img_metas=[meta],
                                 rescale=True, with_nms=False)
    torch.testing.assert_close(out.bboxes,
                               torch.tensor([[-16., -16., 16., 16.]]))
    [out] = head.predict_by_feat([cls], [reg], batch_img_metas=[meta],
                                 rescale=True)
    torch.testing.assert_close(out.bboxes, torch.tensor([[0., 0., 16., 16.]]))


@pytest.mark.parametrize('overrides, message', [
    (dict(bbox_coder=dict(CODER, clip_border=True)), 'clip_border'),
    (dict(test_cfg=dict(TEST_CFG, min_bbox_size=0)), 'min_bbox_size'),
])
def test_settings_that_change_the_order_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        build_head(**overrides)
