"""RetinaNet test-time boxes as detectron2 computes them (the framework of
the published ResT v1 RetinaNet rows)."""
import torch
from mmdet.models.dense_heads import RetinaHead

from mmmetaformer.registry import MODELS


@MODELS.register_module()
class Detectron2RetinaHead(RetinaHead):
    """``RetinaHead`` whose test-time post-processing is detectron2's.

    detectron2 (``RetinaNet.inference_single_image`` then
    ``detector_postprocess``) decodes the boxes WITHOUT clipping them, runs
    the per-class NMS and keeps the ``max_per_img`` best on the unclipped
    boxes, and only then clips the boxes to the image and drops those left
    with zero width or height. mmdet clips at decoding, before NMS (so two
    boxes that leave the image overlap more after clipping, and NMS
    suppresses differently), and keeps empty boxes (``min_bbox_size=-1``) or
    drops them before NMS (``min_bbox_size>=0``).

    Here the coder must not clip (``bbox_coder.clip_border=False``) and the
    pre-NMS size filter must be off (``test_cfg.min_bbox_size=-1``); after
    mmdet's NMS and top-k (the same candidates, scores and NMS as
    detectron2's; NMS IoU is unchanged by the rescaling to the original
    image that mmdet applies first), the boxes are clipped to the original
    image (``ori_shape``; ``img_shape`` without ``rescale``) and those with
    ``x2 <= x1`` or ``y2 <= y1`` are dropped.

    Raises:
        ValueError: If ``bbox_coder.clip_border`` is True or
            ``test_cfg.min_bbox_size`` is >= 0.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if getattr(self.bbox_coder, 'clip_border', True):
            raise ValueError(
                'Detectron2RetinaHead: bbox_coder.clip_border must be False '
                '(detectron2 clips the boxes after NMS, not at decoding).')
        min_size = (self.test_cfg or {}).get('min_bbox_size', -1)
        if min_size >= 0:
            raise ValueError(
                'Detectron2RetinaHead: test_cfg.min_bbox_size must be -1 '
                f'(got {min_size}); detectron2 drops empty boxes after '
                'clipping, which this head does.')

    def _bbox_post_process(self, results, cfg, rescale: bool = False,
                           with_nms: bool = True, img_meta=None):
        results = super()._bbox_post_process(results, cfg, rescale,
                                             with_nms, img_meta)
        if not with_nms:  # candidates for a later merge (test-time aug.)
            return results
        shape = img_meta['ori_shape'] if rescale else img_meta['img_shape']
        return clip_and_drop_empty(results, shape[:2])


def clip_and_drop_empty(results, shape):
    """Clip ``results.bboxes`` (x1, y1, x2, y2) to ``shape`` (height,
    width) and keep the instances with positive width and height, as
    detectron2's ``Boxes.clip`` and ``Boxes.nonempty``."""
    height, width = shape
    boxes = results.bboxes
    x = boxes[:, 0::2].clamp(min=0, max=width)
    y = boxes[:, 1::2].clamp(min=0, max=height)
    results.bboxes = torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], 1)
    keep = (x[:, 1] > x[:, 0]) & (y[:, 1] > y[:, 0])
    return results[keep]
