"""tools/test.py refuses a checkpoint that does not fit the config's model
(it used to score a random detector with exit code 0)."""
import os
import os.path as osp
import subprocess
import sys

import torch
from mmengine.config import Config

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
