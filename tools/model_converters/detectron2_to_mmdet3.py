"""Convert a detectron2 detector checkpoint (RetinaNet or Mask R-CNN with FPN;
e.g. the official ResT / ResTv2 releases of wofmanaf/ResT ``object_detection``)
to an mmdet 3.x checkpoint for this package's config.

Usage::

    python tools/model_converters/detectron2_to_mmdet3.py \\
        model_final.pth configs/mask_rcnn_rest_small.py \\
        checkpoints/mask_rcnn_rest_small_mmdet3.pth

Key mapping (detectron2 -> mmdet 3.x), all weights carried over:

=========================================  ===================================
detectron2                                 mmdet 3.x
=========================================  ===================================
``backbone.bottom_up.*``                   ``backbone.*`` (renamed by the
                                           config's backbone class,
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

The backbone family is the config's ``model.backbone.type``; ``--family``
checks it. ``--allow-partial`` saves a checkpoint that does not fill the
model (reported). The logic lives in :mod:`mmmetaformer.converters`.
"""
import sys

from mmmetaformer.converters.cli import command_line


def main(argv=None):
    return command_line('detectron2', argv)


if __name__ == '__main__':
    sys.exit(main())
