"""mmmetaformer.reproduce (tools/reproduce.py) end to end on the generated
demo data with a synthetic official checkpoint: the printed table must show
the measured metric, which is recomputed here by an independent path (own
resize, forward and IoU)."""
import glob
import math
import os.path as osp
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from mmmetaformer import reproduce
from mmmetaformer import zoo as model_zoo
from mmmetaformer.demo import generate_demo_data
from tests.test_tools import legacy_checkpoints as legacy

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ROW = 'semfpn_poolformer_s12'
PUBLISHED = 37.2
# the configs' data_preprocessor (RGB)
MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)



def _build_semfpn():
    import mmmetaformer  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    cfg = Config.fromfile(osp.join(REPO, 'configs', f'{ROW}.py'))
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmseg')
    return MODELS.build(cfg.model).eval()


def synthetic_checkpoint(path, image_path):
    """An official mmseg 0.x PoolFormer-S12 Semantic FPN checkpoint whose
    classifier picks among the 3 demo classes (ADE20K ids 0-2 after
    reduce_zero_label) by the spatial variation of the features, so that
    the measured mIoU is neither trivially 0 nor a constant prediction.

    The random network's head features are dominated by a constant vector
    ``m``; the class weights are made orthogonal to ``m`` (estimated on
    one demo image) so that the argmax follows the image content.
    """
    sd = legacy.poolformer_mmseg0('s12')
    model = _build_semfpn()
    # official backbone keys through the backbone's own loader, head keys
    # (same names in mmseg 0.x and 1.x) directly
    backbone = {k[len('backbone.'):]: v for k, v in sd.items()
                if k.startswith('backbone.')}
    report = model.backbone.load_converted(backbone)
    assert report.clean, report.summary()
    heads = {k: v for k, v in sd.items() if not k.startswith('backbone.')}
    missing, unexpected = model.load_state_dict(heads, strict=False)
    assert not unexpected and all(k.startswith('backbone.')
                                  for k in missing)
    captured = {}
    model.decode_head.conv_seg.register_forward_hook(
        lambda mod, inp, out: captured.update(x=inp[0]))
    img = cv2.resize(cv2.imread(image_path), (256, 256))
    x = torch.from_numpy(img[:, :, ::-1].copy()).permute(2, 0, 1)[None]
    x = (x.float() - MEAN) / STD
    with torch.no_grad():
        model.decode_head(model.neck(model.backbone(x)))
    m = captured['x'][0].mean(dim=(1, 2))
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, m.numel(), generator=gen)
    w -= (w @ m / (m @ m))[:, None] * m[None]
    weight = torch.zeros(150, m.numel(), 1, 1)
    weight[:3, :, 0, 0] = 50 * w
    bias = torch.full((150, ), -100.0)
    bias[:3] = 0.0
    sd['decode_head.conv_seg.weight'] = weight
    sd['decode_head.conv_seg.bias'] = bias
    torch.save({'state_dict': sd, 'meta': {'CLASSES': ('c', ) * 150}}, path)


def _keep_ratio_size(w, h, scale):
    """mmcv's rescale_size: fit (w, h) into scale = (long, short) edges."""
    factor = min(max(scale) / max(w, h), min(scale) / min(w, h))
    return int(w * factor + 0.5), int(h * factor + 0.5)


def independent_miou(converted_ckpt, ade_root, num_classes=150):
    """mIoU of the converted model on the demo val set with the official
    test resize (keep-ratio to (2048, 512), then to a multiple of 32),
    computed without mmseg's data pipeline, inference or metric code."""
    model = _build_semfpn()
    state = torch.load(converted_ckpt, map_location='cpu', weights_only=True)
    model.load_state_dict(state['state_dict'], strict=True)
    intersect = np.zeros(num_classes)
    union = np.zeros(num_classes)
    images = sorted(glob.glob(osp.join(ade_root, 'images', 'validation',
                                       '*.jpg')))
    assert images
    for image_path in images:
        name = osp.splitext(osp.basename(image_path))[0]
        bgr = cv2.imread(image_path, cv2.IMREAD_COLOR)
        h, w = bgr.shape[:2]
        nw, nh = _keep_ratio_size(w, h, (2048, 512))
        img = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
        mw, mh = math.ceil(nw / 32) * 32, math.ceil(nh / 32) * 32
        img = cv2.resize(img, (mw, mh), interpolation=cv2.INTER_LINEAR)
        x = torch.from_numpy(img[:, :, ::-1].copy()).permute(2, 0, 1)
        x = (x[None].float() - MEAN) / STD
        with torch.no_grad():
            feats = model.neck(model.backbone(x))
            logits = model.decode_head(feats)
            logits = F.interpolate(logits, size=(mh, mw), mode='bilinear',
                                   align_corners=False)
            logits = F.interpolate(logits, size=(h, w), mode='bilinear',
                                   align_corners=False)
        pred = logits[0].argmax(0).numpy()
        gt = cv2.imread(
            osp.join(ade_root, 'annotations', 'validation', f'{name}.png'),
            cv2.IMREAD_UNCHANGED).astype(np.int64)
        gt = np.where(gt == 0, 255, gt - 1)  # reduce_zero_label
        valid = gt != 255
        p, g = pred[valid], gt[valid]
        inter = np.bincount(p[p == g], minlength=num_classes)
        area_p = np.bincount(p, minlength=num_classes)
        area_g = np.bincount(g, minlength=num_classes)
        intersect += inter
        union += area_p + area_g - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = intersect / union
    return float(np.nanmean(iou) * 100)


def test_reproduce_semfpn_on_demo_data(tmp_path, capsys):
    data = tmp_path / 'data'
    generate_demo_data(str(data), num_train=1, num_val=2,
                       image_size=(64, 96), max_objects=3, datasets=('ade', ))
    ckpt = tmp_path / 'official_semfpn_s12.pth'
    first = sorted(glob.glob(str(data / 'ade' / 'images' / 'validation' /
                                 '*.jpg')))[0]
    synthetic_checkpoint(ckpt, first)
    work = tmp_path / 'work'
    out = reproduce.format_table(reproduce.reproduce(
        ROW, checkpoint=str(ckpt), work_dir=str(work),
        data_root=str(data / 'ade')))
    line = next(x for x in out.splitlines()
                if x.startswith(ROW) and 'ade-align-2048x512' in x)
    m = re.match(rf'{ROW}\s+ade-align-2048x512\s+mIoU\s+([\d.]+)\s+'
                 r'([\d.]+)\s+([+-][\d.]+)\s+sail-sg/poolformer', line)
    assert m, line
    published, measured, diff = map(float, m.groups())
    assert published == PUBLISHED
    expected = independent_miou(work / 'converted' / f'{ROW}.pth',
                                str(data / 'ade'))
    assert 0 < expected < 100
    assert abs(measured - expected) <= 0.02, (measured, expected)
    assert abs(diff - (measured - published)) <= 0.011
    assert abs(measured - published) > 1  # not the published number


def test_rows_without_a_downloadable_checkpoint_say_where_to_get_it():
    with pytest.raises(reproduce.ReproduceError) as info:
        reproduce.reproduce('retinanet_poolformer_s12')
    assert 'drive.google.com/file/d/1GKx4jbxdO4ClagPXXt7CoomrV4pOpqul' in \
        str(info.value)
    assert '--checkpoint' in str(info.value)
    without_config = [name for name, row in model_zoo.rows().items()
                      if row['Config'] is None]
    for name in without_config[:1]:
        with pytest.raises(reproduce.ReproduceError,
                           match='no config in this package'):
            reproduce.reproduce(name)
    without_protocol = [
        name for name, row in model_zoo.rows().items()
        if row['Config'] and not any(r['Test Protocol']
                                     for r in row['Results'])
    ]
    for name in without_protocol[:1]:
        with pytest.raises(reproduce.ReproduceError,
                           match='has no test protocol'):
            reproduce.reproduce(name)
    with pytest.raises(reproduce.ReproduceError,
                       match='not a protocol of semfpn_poolformer_s12'):
        reproduce.reproduce('semfpn_poolformer_s12',
                            protocols=['coco-1333x800'])


def test_command_line_reports_errors_without_traceback():
    """tools/reproduce.py is a thin command line: runnable from any
    directory, errors exit 2 with one message."""
    tool = osp.join(REPO, 'tools', 'reproduce.py')
    result = subprocess.run([sys.executable, tool, 'retinanet_poolformer_s12'],
                            cwd='/', capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert result.stderr.startswith('reproduce.py: Row retinanet_poolformer')
    assert 'Traceback' not in result.stderr


def test_mismatched_checkpoint_is_refused(tmp_path):
    """A checkpoint that does not fit the row's model stops before the
    evaluation, listing the keys; --allow-partial goes on."""
    sd = legacy.poolformer_mmseg0('s12')
    del sd['decode_head.conv_seg.bias']
    ckpt = tmp_path / 'partial.pth'
    torch.save({'state_dict': sd}, ckpt)
    with pytest.raises(ValueError, match=r"1 missing keys "
                       r"\['decode_head.conv_seg.bias'\]"):
        reproduce.reproduce(ROW, checkpoint=str(ckpt),
                            work_dir=str(tmp_path / 'work'))
    assert not (tmp_path / 'work' / 'converted' / f'{ROW}.pth').exists()


def test_protocol_pipelines():
    cfg = Config.fromfile(osp.join(REPO, 'configs', f'{ROW}.py'))
    reproduce.apply_protocol(cfg, 'ade-resize-2048x512')
    types = [t['type'] for t in cfg.test_dataloader.dataset.pipeline]
    assert types == ['LoadImageFromFile', 'Resize', 'LoadAnnotations',
                     'PackSegInputs']
    cfg = Config.fromfile(osp.join(REPO, 'configs', f'{ROW}.py'))
    reproduce.apply_protocol(cfg, 'ade-align-2048x512-msflip')
    tta = cfg.test_dataloader.dataset.pipeline[1]
    assert tta['type'] == 'TestTimeAug'
    scales = [t['scale'] for t in tta['transforms'][0]]
    assert scales == [(1024, 256), (1536, 384), (2048, 512), (2560, 640),
                      (3072, 768), (3584, 896)]
    assert tta['transforms'][2] == [dict(type='ResizeToMultiple',
                                         size_divisor=32)]
    assert cfg.model['type'] == 'SegTTAModel'
    with pytest.raises(reproduce.ReproduceError, match='needs an mmdet'):
        reproduce.apply_protocol(cfg, 'coco-1333x800')
    cfg = Config.fromfile(osp.join(REPO, 'configs',
                                   'mask_rcnn_poolformer_s12.py'))
    cfg.test_dataloader.dataset.pipeline[1]['scale'] = (640, 480)
    reproduce.apply_protocol(cfg, 'coco-1333x800')
    resize = cfg.test_dataloader.dataset.pipeline[1]
    assert (resize['type'], resize['scale'], resize['keep_ratio']) == (
        'Resize', (1333, 800), True)
    assert cfg.model.data_preprocessor.pad_size_divisor == 32
    with pytest.raises(reproduce.ReproduceError, match='needs an mmseg'):
        reproduce.apply_protocol(cfg, 'ade-align-2048x512')


def test_checkpoint_urls_share_the_url_keyed_cache(tmp_path, monkeypatch):
    """reproduce downloads through mmmetaformer.checkpoint.download: two
    URLs with the same file name are two cached files (the old copy of the
    cache served the first one for both)."""
    from tests.test_checkpoint.files import Server, pth_bytes
    monkeypatch.setenv('MMMETAFORMER_CHECKPOINTS', str(tmp_path / 'cache'))
    row = {'Name': 'x', 'Weights Download': 'direct', 'Weights': None}
    with Server({'/a/model.pth': pth_bytes({'w': torch.zeros(1)}),
                 '/b/model.pth': pth_bytes({'w': torch.ones(1)})}) as srv:
        path_a = reproduce.resolve_checkpoint(row, srv.url('/a/model.pth'))
        path_b = reproduce.resolve_checkpoint(row, srv.url('/b/model.pth'))
    assert path_a != path_b
    assert torch.load(path_a, weights_only=True)['w'].item() == 0
    assert torch.load(path_b, weights_only=True)['w'].item() == 1
