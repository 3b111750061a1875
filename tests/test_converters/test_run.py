"""mmmetaformer.converters.run: a conversion stops on keys no rule claims,
a config that does not fit and NaN / Inf; ``allow_partial`` saves and
reports."""
import os.path as osp

import pytest
import torch

from mmmetaformer.converters.common import ConversionError
from mmmetaformer.converters.run import run_conversion
from tests.test_converters.helpers import REPO, save
from tests.test_tools import legacy_checkpoints as legacy


def test_unknown_keys_and_wrong_configs_are_refused(tmp_path):
    src = legacy.poolformer_mmdet2('s12', 'retinanet')
    src['bbox_head.atss_centerness.weight'] = torch.zeros(9, 256, 3, 3)
    out = str(tmp_path / 'out.pth')
    with pytest.raises(ConversionError, match='atss_centerness'):
        run_conversion(
            save(src, tmp_path / 'a.pth'),
            osp.join(REPO, 'configs/retinanet_poolformer_s12.py'), out,
            'mmdet2')
    src = save(legacy.poolformer_mmdet2('s12', 'retinanet'),
               tmp_path / 'b.pth')
    with pytest.raises(ValueError, match='missing keys|Shape mismatch'):
        run_conversion(
            src, osp.join(REPO, 'configs/retinanet_poolformer_s24.py'), out,
            'mmdet2')
    with pytest.raises(ValueError, match='unexpected keys'):
        run_conversion(
            src, osp.join(REPO, 'configs/mask_rcnn_poolformer_s12.py'), out,
            'mmdet2')
    assert not osp.exists(out)


def test_allow_partial_saves_and_reports(tmp_path):
    state = legacy.poolformer_mmdet2('s12', 'retinanet')
    del state['bbox_head.retina_cls.bias']
    src = save(state, tmp_path / 'src.pth')
    config = osp.join(REPO, 'configs/retinanet_poolformer_s12.py')
    out = str(tmp_path / 'out.pth')
    with pytest.raises(ValueError, match=r'1 missing keys '
                       r"\['bbox_head.retina_cls.bias'\]"):
        run_conversion(src, config, out, 'mmdet2')
    report = run_conversion(src, config, out, 'mmdet2',
                            allow_partial=True)
    assert not report.strict
    assert 'PARTIAL load' in report.summary()
    assert 'bbox_head.retina_cls.bias' in report.summary()
    saved = torch.load(out, weights_only=True)['state_dict']
    assert len(saved) == len(state)


def test_nonfinite_source_is_refused(tmp_path):
    state = legacy.poolformer_mmdet2('s12', 'retinanet')
    state['backbone.network.0.0.mlp.fc1.weight'][0, 0] = float('nan')
    with pytest.raises(ValueError, match='NaN or Inf.*network.0.0.mlp.fc1'):
        run_conversion(
            save(state, tmp_path / 'src.pth'),
            osp.join(REPO, 'configs/retinanet_poolformer_s12.py'),
            str(tmp_path / 'out.pth'), 'mmdet2')
