"""mmmetaformer.runner.load_from: the checks before a Runner loads a
checkpoint name the converter of an unconverted official dense checkpoint,
the backbone ``init_cfg`` route of a classifier, and the keys of a
checkpoint that does not fit."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmmetaformer.converters.run import run_conversion
from mmmetaformer.runner.load_from import (check_checkpoint_fits,
                                           check_load_from)
from tests.import_graph import modules_after_import
from tests.test_converters.helpers import REPO, build, save
from tests.test_tools import legacy_checkpoints as legacy


def test_check_load_from_names_the_converter(tmp_path):
    """An official mmdet 2.x checkpoint given to load_from unconverted
    would leave the backbone random (mmengine loads non-strictly): the check
    names the converter; the converted file passes."""
    config = osp.join(REPO, 'configs/retinanet_poolformer_s12.py')
    src = save(legacy.poolformer_mmdet2('s12', 'retinanet'),
               tmp_path / 'src.pth')
    model = build('configs/retinanet_poolformer_s12.py')
    with pytest.raises(ValueError) as info:
        check_load_from(src, model, config)
    message = str(info.value)
    assert 'mmdet 2.x detector checkpoint' in message
    assert (f'python tools/model_converters/mmdet2_to_mmdet3.py {src} '
            f'{config} converted.pth') in message
    out = str(tmp_path / 'converted.pth')
    run_conversion(src, config, out, 'mmdet2')
    assert check_load_from(out, model, config) is None
    d2 = save(legacy.rest_detectron2('rest_small', 'retinanet'),
              tmp_path / 'd2.pth', container='model')
    with pytest.raises(ValueError, match='detectron2_to_mmdet3.py'):
        check_load_from(
            d2, build('configs/retinanet_rest_small.py'))


def test_check_checkpoint_fits_lists_missing_and_unexpected(tmp_path):
    config = osp.join(REPO, 'configs/retinanet_poolformer_s12.py')
    model = build('configs/retinanet_poolformer_s12.py')
    state = dict(model.state_dict())
    assert check_checkpoint_fits(
        save(state, tmp_path / 'ok.pth'), model, config) == []
    del state['bbox_head.retina_reg.weight']
    state['bbox_head.atss_centerness.weight'] = torch.zeros(1)
    path = save(state, tmp_path / 'bad.pth')
    with pytest.raises(ValueError) as info:
        check_checkpoint_fits(path, model, config)
    message = str(info.value)
    assert '1 model keys missing from the checkpoint: ' \
        'bbox_head.retina_reg.weight' in message
    assert '1 checkpoint keys not in the model: ' \
        'bbox_head.atss_centerness.weight' in message
    problems = check_checkpoint_fits(path, model, config,
                                     allow_partial=True)
    assert len(problems) == 2


def test_load_from_classifier_names_the_init_cfg_route(tmp_path):
    """An mmpretrain PoolFormer classifier given as load_from was called
    "an mmdet 2.x detector checkpoint" with a converter command that then
    failed; the route that works is the backbone's init_cfg."""
    state = legacy.prefixed('backbone.', legacy.official_backbone(
        'poolformer_s12', drop=['norm0.', 'norm2.', 'norm4.']))
    state['head.fc.weight'] = torch.zeros(1000, 512)
    state['head.fc.bias'] = torch.zeros(1000)
    path = save(state, tmp_path / 'cls.pth')
    config = 'configs/retinanet_poolformer_s12.py'
    with pytest.raises(ValueError) as info:
        check_load_from(path, build(config), config)
    message = str(info.value)
    assert 'is an mmpretrain image classifier checkpoint' in message
    assert "a PoolFormer checkpoint (official key names, arch 's12'" \
        in message
    assert (f"model.backbone.init_cfg=dict(type='Pretrained', "
            f"checkpoint='{path}', prefix='backbone.')") in message
    assert 'mmdet 2.x' not in message and 'mmdet2_to_mmdet3' not in message
    # the route named works
    cfg = Config.fromfile(osp.join(REPO, config))
    backbone_cfg = dict(cfg.model.backbone, init_cfg=dict(
        type='Pretrained', checkpoint=path, prefix='backbone.'))
    from mmmetaformer.registry import MODELS
    backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    assert torch.equal(backbone.norm3.weight,
                       state['backbone.norm6.weight'])


def test_imports_neither_launch_nor_convert():
    """The checks sit beside the runner: importing them (in a fresh
    interpreter) imports neither mmmetaformer.launch, which uses them, nor
    the mmmetaformer.convert re-export module."""
    loaded = modules_after_import('mmmetaformer.runner.load_from')
    assert 'mmmetaformer.runner.load_from' in loaded
    assert not loaded & {'mmmetaformer.launch', 'mmmetaformer.convert'}
