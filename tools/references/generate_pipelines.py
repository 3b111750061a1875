"""Write the official pipeline references of tests/data/pipelines/.

Runs the OFFICIAL dense-prediction code (sail-sg/poolformer's detection /
segmentation folders on mmdet 2.28.2 / mmseg 0.30.0, mmcv-full 1.7.2;
wofmanaf/ResT's semantic_segmentation folder on mmseg 0.30.0 and its
object_detection folder on detectron2 0.6) on its own official configs,
with a complete official-format checkpoint whose every tensor is filled by
the documented rule below, on real photographs from ``skimage.data``, and
stores per pipeline (a few hundred kB):

* ``<name>.keys.json``: the official checkpoint's keys, shapes and dtypes
  (the checkpoint itself is rebuilt from them by the rule, in the tests);
* ``<name>.ref.pt``: per image the final predictions (detections as
  ``[x1, y1, x2, y2, score]`` + labels; label maps as uint8 tensors),
  samples of the tensors at the backbone / neck / head boundaries
  (shape, mean, std and 1024 entries at fixed positions), the input tensor's
  shape, and the official evaluator's results (mmdet 2
  ``CocoDataset.evaluate`` / mmseg 0.x ``eval_metrics``) on those
  predictions;
* ``images/*.png`` (written once) and the small annotation files.

Usage (the official environment, see setup_official_env.sh; never in CI)::

    ~/.cache/mmmetaformer/official-env/bin/python \\
        tools/references/generate_pipelines.py \\
        --poolformer /path/to/sail-sg/poolformer/checkout [--only NAME]

Fill rule: ``splitmix64-crc32-v1.1`` of ``mmmetaformer/testing/parity.py``
(loaded from that file, the same function the tests use) applied to every
key of the official checkpoint, cast to float32, times the factor of the
key in ``SCALED_KEYS`` (default 1): the classification bias of the dense
head is 0 so that NMS and top-k see full candidate sets; the mask
predictor's weights are 64x the rule so that few pixels of the pasted masks
sit at the 0.5 threshold (with the plain rule many do, and float32 rounding
decides them: at 8x, one pixel of the 200 masks differed between the
official pipeline and this package's, where this package's pasted
probabilities were 0.499988 and 0.500004). ``D2_SCALED_KEYS``: the same
factors under detectron2's key names.
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import sys

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OUT = osp.join(REPO, 'tests', 'data', 'pipelines')
#: skimage.data photographs and the crops stored ((rows, cols) slices).
#: The pipelines rescale every image to their fixed scale, so thin strips
#: keep the official pipelines' inputs (and the tests) small: a landscape
#: and a portrait strip for the single-scale pipelines, and an 8-row strip
#: (2048 x 32 after AlignResize) for UperNet and multi-scale + flip.
IMAGES = {
    'strips': {
        'astronaut': ('astronaut', (slice(16, 80), slice(0, 512))),
        'chelsea': ('chelsea', (slice(0, 300), slice(210, 250))),
    },
    'thin': {'rocket': ('rocket', (slice(204, 212), slice(0, 640)))},
}
SCALED_KEYS = {
    'bbox_head.retina_cls.bias': 0.0,
    'roi_head.mask_head.conv_logits.weight': 64.0,
}
N_SAMPLES = 1024


def load_parity():
    spec = importlib.util.spec_from_file_location(
        'parity', osp.join(REPO, 'mmmetaformer', 'testing', 'parity.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_images(group):
    """``images/<group>/<name>.png`` (written once): name -> path."""
    import cv2
    import skimage.data
    os.makedirs(osp.join(OUT, 'images', group), exist_ok=True)
    paths = {}
    for name, (source, crop) in IMAGES[group].items():
        path = osp.join(OUT, 'images', group, f'{name}.png')
        if not osp.exists(path):
            rgb = getattr(skimage.data, source)()[crop]
            cv2.imwrite(path, np.ascontiguousarray(rgb[..., ::-1]))
        paths[name] = path
    return paths


def filled_checkpoint(model, parity, scaled=None):
    scaled = SCALED_KEYS if scaled is None else scaled
    keys, state = [], {}
    for key, value in model.state_dict().items():
        keys.append([key, list(value.shape), str(value.dtype)])
        factor = scaled.get(key, 1.0)
        state[key] = (factor * parity.fill_tensor(key, value.shape)).to(
            value.dtype)
    model.load_state_dict(state, strict=True)
    return keys


def sample(t):
    t = t.detach().float().reshape(-1)
    idx = torch.arange(N_SAMPLES) * (t.numel() - 1) // (N_SAMPLES - 1)
    return dict(numel=t.numel(), mean=t.mean(), std=t.std(),
                values=t[idx].clone())


class Recorder:
    """Wrap ``module.forward`` (instance attribute: direct ``forward()``
    calls are recorded too) and keep samples of the flat tensor outputs."""

    def __init__(self, modules):
        self.records = {}
        for name, module in modules.items():
            self._wrap(name, module)

    def _wrap(self, name, module):
        forward = module.forward

        def wrapped(*args, **kwargs):
            out = forward(*args, **kwargs)
            self.records[name] = [(list(t.shape), sample(t))
                                  for t in flatten(out)]
            return out
        module.forward = wrapped

    def pop(self):
        records, self.records = self.records, {}
        return records


def flatten(out):
    if torch.is_tensor(out):
        return [out]
    if isinstance(out, dict):  # detectron2: stage / level name -> map
        out = list(out.values())
    return [t for item in out for t in flatten(item)]


def save(name, record):
    torch.save(record, osp.join(OUT, f'{name}.ref.pt'))
    print(f'wrote {name}.ref.pt')


def write_keys(name, config, keys, test, scaled=None):
    """The checkpoint's keys, and the official test pipeline and input
    normalisation as the official code ran them."""
    with open(osp.join(OUT, f'{name}.keys.json'), 'w') as f:
        json.dump(dict(config=config, fill_rule='splitmix64-crc32-v1.1',
                       official_test_pipeline=test,
                       scaled_keys=SCALED_KEYS if scaled is None else scaled,
                       keys=keys), f, indent=0)


# --------------------------------------------------------------- detection
def coco_annotations(dets_per_image, images, classes, path):
    """A small COCO annotation file: per image the 6 highest-scoring
    official detections (their masks as the segmentation when there are
    masks), every second box shifted by 4 px and every third relabelled
    (so that AP is neither 0 nor 1)."""
    import cv2
    out = dict(images=[], annotations=[], categories=[
        dict(id=i + 1, name=c) for i, c in enumerate(classes)])
    for img_id, (name, (boxes, labels, masks)) in enumerate(
            dets_per_image.items(), 1):
        h, w = cv2.imread(images[name]).shape[:2]
        out['images'].append(dict(id=img_id, file_name=f'{name}.png',
                                  height=h, width=w))
        order = np.argsort(-boxes[:, 4], kind='stable')[:6]
        for k, i in enumerate(order):
            x1, y1, x2, y2 = boxes[i, :4].tolist()
            shift = 4.0 if k % 2 else 0.0
            label = int(labels[i]) if k % 3 != 2 else (int(labels[i]) + 1) % 80
            bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
            ann = dict(id=len(out['annotations']) + 1, image_id=img_id,
                       category_id=label + 1, iscrowd=0, area=bw * bh,
                       bbox=[x1 + shift, y1, bw, bh])
            if masks is not None:
                ann['segmentation'] = masks[i]
                ann['area'] = float(max(masks_area(masks[i]), 1))
            out['annotations'].append(ann)
    with open(path, 'w') as f:
        json.dump(out, f)


def masks_area(rle):
    import pycocotools.mask as mask_utils
    return int(mask_utils.area(dict(rle, counts=rle['counts'].encode())))


def encode_masks(segm_result):
    """mmdet 2 per-class mask lists -> RLEs (JSON-friendly)."""
    return rle_list([mask for class_masks in segm_result
                     for mask in class_masks])


def rle_list(masks):
    import pycocotools.mask as mask_utils
    rles = []
    for mask in masks:
        rle = mask_utils.encode(np.asfortranarray(
            np.asarray(mask).astype(np.uint8)))
        rles.append(dict(size=[int(v) for v in rle['size']],
                         counts=rle['counts'].decode('ascii')))
    return rles


def run_detector(name, config, poolformer, rest, images, parity):
    from mmdet.apis import inference_detector, init_detector
    from mmdet.core import encode_mask_results
    from mmdet.datasets import CocoDataset
    model = init_detector(
        osp.join(poolformer, 'detection', 'configs', config), None,
        device='cpu', cfg_options={'model.backbone.init_cfg': None})
    keys = filled_checkpoint(model, parity)
    head = model.bbox_head if hasattr(model, 'bbox_head') else \
        model.rpn_head
    recorder = Recorder(dict(backbone=model.backbone, neck=model.neck,
                             head=head))
    per_image, results, raw = {}, [], {}
    for img, path in images.items():
        result = inference_detector(model, path)
        bbox_result, segm_result = result if isinstance(result, tuple) \
            else (result, None)
        boxes = np.concatenate(bbox_result)
        labels = np.concatenate([np.full(len(r), c)
                                 for c, r in enumerate(bbox_result)])
        masks = None if segm_result is None else encode_masks(segm_result)
        raw[img] = (boxes, labels, masks)
        # as the official test.py: masks RLE-encoded before evaluation
        results.append(result if segm_result is None else
                       (bbox_result, encode_mask_results(segm_result)))
        per_image[img] = dict(boxes=torch.from_numpy(boxes),
                              labels=torch.from_numpy(labels),
                              tensors=recorder.pop())
        if masks is not None:
            per_image[img]['masks'] = masks
    ann = osp.join(OUT, f'{name}.coco.json')
    coco_annotations(raw, images, CocoDataset.CLASSES, ann)
    dataset = CocoDataset(ann, [], test_mode=True,
                          img_prefix=osp.dirname(next(iter(images.values()))))
    metric = ['bbox'] if segm_result is None else ['bbox', 'segm']
    stats = record_coco_stats()
    metrics = dataset.evaluate(results, metric=metric)
    evaluator = {k: v for k, v in metrics.items() if not isinstance(v, str)}
    evaluator.update({f'stats_{k}': v for k, v in stats.items()})
    write_keys(name, config, keys, model.cfg.data.test.pipeline)
    save(name, dict(images=per_image, evaluator=evaluator))


def record_coco_stats():
    """Keep the full-precision ``COCOeval.stats`` of each ``iouType``
    (``evaluate`` returns them rounded)."""
    from pycocotools.cocoeval import COCOeval
    stats, summarize = {}, COCOeval.summarize

    def wrapped(self):
        summarize(self)
        stats[self.params.iouType] = torch.tensor(self.stats,
                                                  dtype=torch.float64)
    COCOeval.summarize = wrapped
    return stats


# -------------------------------------------------------------- detectron2
#: ``SCALED_KEYS`` under their detectron2 names.
D2_SCALED_KEYS = {
    'head.cls_score.bias': 0.0,
    'roi_heads.mask_head.predictor.weight': 64.0,
}
#: The official config entries of the test (stored in the keys file).
D2_TEST_KEYS = (
    'MODEL.META_ARCHITECTURE', 'INPUT.MIN_SIZE_TEST', 'INPUT.MAX_SIZE_TEST',
    'INPUT.FORMAT', 'MODEL.PIXEL_MEAN', 'MODEL.PIXEL_STD',
    'MODEL.RETINANET.SCORE_THRESH_TEST',
    'MODEL.RETINANET.TOPK_CANDIDATES_TEST', 'MODEL.RETINANET.NMS_THRESH_TEST',
    'MODEL.RPN.PRE_NMS_TOPK_TEST', 'MODEL.RPN.POST_NMS_TOPK_TEST',
    'MODEL.RPN.NMS_THRESH', 'MODEL.PROPOSAL_GENERATOR.MIN_SIZE',
    'MODEL.ROI_HEADS.SCORE_THRESH_TEST',
    'MODEL.ROI_HEADS.NMS_THRESH_TEST', 'TEST.DETECTIONS_PER_IMAGE')


def d2_config(rest, config):
    """The official ResT config set up as its ``train_net.setup`` does,
    with ``MODEL.BACKBONE.FREEZE_AT`` 0 (its default 2 cannot build: see
    configs/_base_/retinanet_fpn_1x_coco_rest.py; no effect on a test)."""
    from detectron2.config import get_cfg
    sys.path.insert(0, osp.join(rest, 'object_detection'))
    from restv2 import add_restv1_config, add_restv2_config
    cfg = get_cfg()
    add_restv2_config(cfg)
    add_restv1_config(cfg)
    cfg.merge_from_file(osp.join(rest, 'object_detection', 'configs',
                                 config))
    cfg.merge_from_list(['MODEL.BACKBONE.FREEZE_AT', 0,
                         'MODEL.DEVICE', 'cpu'])
    cfg.freeze()
    return cfg


def d2_test_setting(cfg, mapper):
    """The config entries of ``D2_TEST_KEYS`` and the test augmentations
    of the official ``DatasetMapper`` (class, sizes, PIL interpolation)."""
    setting = {}
    for key in D2_TEST_KEYS:
        value = cfg
        for part in key.split('.'):
            value = getattr(value, part)
        setting[key] = list(value) if isinstance(value, tuple) else value
    setting['augmentations'] = [
        dict(type=type(aug).__name__, **{
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in vars(aug).items() if not k.startswith('_')})
        for aug in mapper.augmentations.augs]
    return setting


def d2_predict(model, mapper, records, recorder):
    """The official model on each record through the official mapper:
    (mapper outputs, model outputs, per-image reference entries, the
    (boxes, labels, masks) the annotation rule reads)."""
    inputs, outputs, per_image, raw = [], [], {}, {}
    for record in records:
        inp = mapper(record)
        with torch.no_grad():
            out = model([inp])[0]
        inputs.append(inp)
        outputs.append(out)
        inst = out['instances']
        image = osp.splitext(osp.basename(record['file_name']))[0]
        boxes = torch.cat([inst.pred_boxes.tensor, inst.scores[:, None]], 1)
        masks = rle_list(inst.pred_masks.numpy()) \
            if inst.has('pred_masks') else None
        raw[image] = (boxes.numpy(), inst.pred_classes.numpy(), masks)
        per_image[image] = dict(boxes=boxes.clone(),
                                labels=inst.pred_classes.clone(),
                                tensors=recorder.pop())
        if masks is not None:
            per_image[image]['masks'] = masks
    return inputs, outputs, per_image, raw


def run_detectron2(name, config, poolformer, rest, images, parity):
    """wofmanaf/ResT's detectron2 test (``train_net.py --eval-only``): the
    official ``DatasetMapper`` (ResizeShortestEdge, PIL bilinear), the model
    in eval mode, ``COCOEvaluator`` (as its ``build_evaluator``) on the
    small annotation file."""
    from detectron2.data import DatasetCatalog, DatasetMapper
    from detectron2.data.datasets import register_coco_instances
    from detectron2.evaluation import COCOEvaluator
    from detectron2.modeling import build_model
    from mmdet.datasets import CocoDataset
    cfg = d2_config(rest, config)
    model = build_model(cfg).eval()
    keys = filled_checkpoint(model, parity, D2_SCALED_KEYS)
    head = model.head if hasattr(model, 'head') else \
        model.proposal_generator.rpn_head
    recorder = Recorder(dict(backbone=model.backbone.bottom_up,
                             neck=model.backbone, head=head))
    ann = osp.join(OUT, f'{name}.coco.json')
    # first the images alone (the annotations derive from the predictions)
    coco_annotations({n: (np.zeros((0, 5)), [], None) for n in images},
                     images, CocoDataset.CLASSES, ann)
    register_coco_instances(name, {}, ann,
                            osp.dirname(next(iter(images.values()))))
    mapper = DatasetMapper(cfg, False)
    inputs, outputs, per_image, raw = d2_predict(
        model, mapper, DatasetCatalog.get(name), recorder)
    coco_annotations(raw, images, CocoDataset.CLASSES, ann)
    stats = record_coco_stats()
    coco = COCOEvaluator(name, output_dir=None)
    coco.reset()
    for inp, out in zip(inputs, outputs):
        coco.process([inp], [out])
    evaluator = {f'{task}_{metric}': torch.tensor(value, dtype=torch.float64)
                 for task, results in coco.evaluate().items()
                 for metric, value in results.items() if '-' not in metric}
    evaluator.update({f'stats_{k}': v for k, v in stats.items()})
    write_keys(name, config, keys, d2_test_setting(cfg, mapper),
               D2_SCALED_KEYS)
    save(name, dict(images=per_image, evaluator=evaluator))


# ------------------------------------------------------------ segmentation
def ade_annotations(label_maps, path_of):
    """Ground truth derived from the official label maps: labels + 1
    (``reduce_zero_label``), a band of rows relabelled and a block ignored
    (0), so that mIoU is neither 0 nor 1."""
    import cv2
    gts = {}
    for name, pred in label_maps.items():
        gt = pred.astype(np.int64) + 1
        h, w = gt.shape
        gt[: h // 4] = (gt[: h // 4] + 7) % 150 + 1
        gt[h // 2:h // 2 + 8, : w // 3] = 0
        cv2.imwrite(path_of(name), gt.astype(np.uint8))
        gts[name] = gt
    return gts


def build_segmentor(name, config, poolformer, rest):
    """The official segmentor of ``config`` (PoolFormer's segmentation
    folder, or ResT's semantic_segmentation one) with SyncBN reverted."""
    import mmcv
    from mmcv.cnn.utils import revert_sync_batchnorm
    from mmseg.apis import init_segmentor
    sys.path.insert(0, osp.join(poolformer, 'segmentation'))
    import align_resize  # noqa: F401  (registers AlignResize)
    if name.startswith('upernet_restv2'):
        sys.path.insert(0, osp.join(rest, 'semantic_segmentation'))
        import backbone  # noqa: F401  (registers the official ResTV2)
        path = osp.join(rest, 'semantic_segmentation', 'configs', config)
    else:
        path = osp.join(poolformer, 'segmentation', 'configs', config)
    cfg = mmcv.Config.fromfile(path)
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None  # no ImageNet download
    if name.endswith('_msflip'):  # as mmseg 0.x tools/test.py --aug-test
        cfg.data.test.pipeline[1].img_ratios = [
            0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
        cfg.data.test.pipeline[1].flip = True
    model = init_segmentor(cfg, None, device='cpu')
    return revert_sync_batchnorm(model)


def run_segmentor(name, config, poolformer, rest, images, parity):
    from mmseg.apis import inference_segmentor
    from mmseg.core import eval_metrics
    model = build_segmentor(name, config, poolformer, rest)
    keys = filled_checkpoint(model, parity)
    recorder = Recorder(dict(backbone=model.backbone, head=model.decode_head,
                             **({'neck': model.neck}
                                if hasattr(model, 'neck') else {})))
    per_image, maps = {}, {}
    for img, path in images.items():
        pred = inference_segmentor(model, path)[0]
        maps[img] = pred
        per_image[img] = dict(label_map=torch.from_numpy(
            pred.astype(np.uint8)), tensors=recorder.pop())
    gt_dir = osp.join(OUT, f'{name}_gt')
    os.makedirs(gt_dir, exist_ok=True)
    gts = ade_annotations(maps, lambda n: osp.join(gt_dir, f'{n}.png'))
    names = list(images)
    # as mmseg 0.x ADE20KDataset.evaluate: reduce_zero_label on the
    # stored annotation PNGs, ignore index 255
    metrics = eval_metrics([maps[n] for n in names], [gts[n] for n in names],
                           150, 255, ['mIoU'], reduce_zero_label=True)
    evaluator = {k: torch.from_numpy(np.asarray(v, dtype=np.float64))
                 for k, v in metrics.items()}
    evaluator['mIoU'] = torch.tensor(float(np.nanmean(metrics['IoU'])),
                                     dtype=torch.float64)
    write_keys(name, config, keys, model.cfg.data.test.pipeline)
    save(name, dict(images=per_image, evaluator=evaluator))


def supply_rest_bases(poolformer, rest):
    """ResT's UperNet configs name ``../_base_/datasets/ade20k.py``,
    ``default_runtime.py`` and ``schedules/schedule_160k.py``, which its
    repository lacks; its tools/train.py imports PoolFormer's AlignResize,
    so PoolFormer's files (ADE20K with AlignResize at test time, mmseg's
    runtime and 160k schedule) are copied into the ResT checkout (outside
    this repository) when missing."""
    import shutil
    if rest is None:
        raise SystemExit('--rest is needed for the ResTv2 pipelines')
    src = osp.join(poolformer, 'segmentation', 'configs', '_base_')
    dst = osp.join(rest, 'semantic_segmentation', 'configs', '_base_')
    for part in ('datasets/ade20k.py', 'default_runtime.py',
                 'schedules/schedule_160k.py'):
        if not osp.exists(osp.join(dst, part)):
            os.makedirs(osp.dirname(osp.join(dst, part)), exist_ok=True)
            shutil.copy(osp.join(src, part), osp.join(dst, part))


PIPELINES = {
    'retinanet_poolformer_s12': (
        run_detector, 'retinanet_poolformer_s12_fpn_1x_coco.py', 'strips'),
    'mask_rcnn_poolformer_s12': (
        run_detector, 'mask_rcnn_poolformer_s12_fpn_1x_coco.py', 'strips'),
    'semfpn_poolformer_s12': (
        run_segmentor, 'sem_fpn/PoolFormer/fpn_poolformer_s12_ade20k_40k.py',
        'strips'),
    'semfpn_poolformer_s12_msflip': (
        run_segmentor, 'sem_fpn/PoolFormer/fpn_poolformer_s12_ade20k_40k.py',
        'thin'),
    'upernet_restv2_tiny': (
        run_segmentor, 'ResTv2/upernet_restv2_tiny_512_160k_ade20k.py',
        'thin'),
    'upernet_restv2_tiny_msflip': (
        run_segmentor, 'ResTv2/upernet_restv2_tiny_512_160k_ade20k.py',
        'thin'),
    'retinanet_rest_small': (
        run_detectron2, 'ResTv1/retinanet_rest_small_FPN_1x.yaml', 'strips'),
    'mask_rcnn_rest_small': (
        run_detectron2, 'ResTv1/mask_rcnn_rest_small_FPN_1x.yaml', 'strips'),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--poolformer', required=True,
                        help='checkout of github.com/sail-sg/poolformer')
    parser.add_argument('--rest', help='checkout of github.com/wofmanaf/ResT '
                        'with the missing configs/_base_ files of its '
                        'semantic_segmentation folder supplied from '
                        'PoolFormer\'s (see supply_rest_bases)')
    parser.add_argument('--only', choices=sorted(PIPELINES), nargs='*')
    args = parser.parse_args()
    sys.path.insert(0, args.poolformer)
    import models  # noqa: F401  (official backbones, as its test.py)
    torch.set_num_threads(max(1, int(os.environ.get('OMP_NUM_THREADS', 2))))
    parity = load_parity()
    for name in args.only or sorted(PIPELINES):
        run, config, group = PIPELINES[name]
        # the official RetinaNet setting (its README): the backbone builds
        # no stage-1 output norm; read when the backbone is constructed
        os.environ.pop('FORK_LAST3', None)
        if name.startswith('retinanet'):
            os.environ['FORK_LAST3'] = '1'
        if name.startswith('upernet_restv2'):
            supply_rest_bases(args.poolformer, args.rest)
        if run is run_detectron2 and args.rest is None:
            raise SystemExit(f'--rest is needed for {name}')
        run(name, config, args.poolformer, args.rest, write_images(group),
            parity)


if __name__ == '__main__':
    main()
