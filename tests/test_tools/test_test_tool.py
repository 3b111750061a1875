"""tools/test.py refuses a checkpoint that does not fit the config's model
(it used to score a random detector with exit code 0)."""
import os
import os.path as osp
import subprocess
import sys

import torch
from mmengine.config import Config

from tests.tool_scripts import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/demo/retinanet_poolformer_s12_demo.py')


def _model_state_dict():
    import mmmetaformer  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    return MODELS.build(cfg.model).state_dict()


def test_test_tool_refuses_a_checkpoint_that_does_not_fit(tmp_path):
    from mmmetaformer.demo import generate_demo_data
    root = str(tmp_path / 'demo') + '/'
    generate_demo_data(root, num_train=1, num_val=1, datasets=('coco', ))
    state = dict(_model_state_dict())
    del state['bbox_head.retina_cls.weight']
    state['bbox_head.atss_centerness.weight'] = torch.zeros(1)
    ckpt = str(tmp_path / 'other_model.pth')
    torch.save({'state_dict': state, 'meta': {}}, ckpt)
    env = dict(os.environ, OMP_NUM_THREADS='1', MMMETAFORMER_DEMO_ROOT=root)
    command = [sys.executable, osp.join(REPO, 'tools', 'test.py'), CONFIG,
               ckpt, '--work-dir', str(tmp_path / 'wd')]
    result = subprocess.run(command, env=env, capture_output=True,
                            text=True, timeout=600, cwd=str(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert 'does not fit the model' in result.stderr
    assert '1 model keys missing from the checkpoint: ' \
        'bbox_head.retina_cls.weight' in result.stderr
    assert '1 checkpoint keys not in the model: ' \
        'bbox_head.atss_centerness.weight' in result.stderr
    assert 'coco/bbox_mAP' not in result.stdout  # nothing was scored
    result = subprocess.run(command + ['--allow-partial'], env=env,
                            capture_output=True, text=True, timeout=600,
                            cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert '--allow-partial: 1 model keys missing' in result.stderr
    assert 'coco/bbox_mAP' in result.stdout + result.stderr


def _test_tool():
    return load_tool('test.py', 'test_tool')


def test_tta_runs_the_published_multi_scale_flip_protocol(tmp_path):
    """``--tta`` on ResTv2 UperNet: mmseg 0.x ``--aug-test`` as published,
    (2048, 512) x {0.5 ... 1.75}, each aligned to 32, with and without
    flip, in mmseg's SegTTAModel."""
    tool = _test_tool()
    config = osp.join(REPO, 'configs', 'upernet_restv2_tiny.py')
    args = tool.parse_args([config, 'ckpt.pth', '--tta',
                            '--work-dir', str(tmp_path)])
    cfg = tool.build_cfg(args)
    assert cfg.model.type == 'SegTTAModel'
    load, tta = cfg.test_dataloader.dataset.pipeline
    assert tta.type == 'TestTimeAug'
    scales, flips, multiple = tta.transforms[:3]
    assert [t.scale for t in scales] == [(1024, 256), (1536, 384),
                                         (2048, 512), (2560, 640),
                                         (3072, 768), (3584, 896)]
    assert all(t.keep_ratio for t in scales)
    assert [f.prob for f in flips] == [0.0, 1.0]
    assert multiple == [dict(type='ResizeToMultiple', size_divisor=32)]
    single = tool.build_cfg(tool.parse_args([config, 'ckpt.pth',
                                             '--work-dir', str(tmp_path)]))
    assert single.model.type == 'EncoderDecoder'


def test_tta_without_a_published_protocol_stops(tmp_path, capsys):
    tool = _test_tool()
    for config, name in (('semfpn_poolformer_s12.py', 'several'),
                         ('retinanet_poolformer_s12.py', 'no multi-scale')):
        args = tool.parse_args([osp.join(REPO, 'configs', config),
                                'ckpt.pth', '--tta',
                                '--work-dir', str(tmp_path)])
        try:
            tool.build_cfg(args)
        except SystemExit as exit_:
            assert exit_.code == 2
        else:
            raise AssertionError('no exit')
        assert name in capsys.readouterr().err
    args = tool.parse_args([
        osp.join(REPO, 'configs', 'semfpn_poolformer_s12.py'), 'ckpt.pth',
        '--tta', 'ade-resize-2048x512-msflip', '--work-dir', str(tmp_path)])
    cfg = tool.build_cfg(args)
    assert len(cfg.test_dataloader.dataset.pipeline[1].transforms) == 4
