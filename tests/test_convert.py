"""Dense-checkpoint conversion (:mod:`mmmetaformer.convert`, command lines
``tools/model_converters/<source>_to_<target>.py``): synthetic checkpoints
with the official key layouts and shapes (see ``legacy_checkpoints``) must
convert into checkpoints that load with ``strict=True`` into the models of
this package's configs, with every tensor carried over."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmmetaformer import convert
from tests.test_tools import legacy_checkpoints as legacy

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def build(config):
    """The model of a package config, built here with the downstream
    registry (independently of the converters' own helper)."""
    import mmmetaformer  # noqa: F401
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.backbone.init_cfg = None
    cfg.model.pop('pretrained', None)
    init_default_scope(cfg.default_scope)
    if cfg.default_scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    return MODELS.build(cfg.model)


def run(source_format, src_state, tmp_path, config, container='state_dict',
        meta=None, extra=()):
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / 'src.pth'
    ckpt = {container: src_state}
    if meta is not None:
        ckpt['meta'] = meta
    ckpt['optimizer'] = {'state': {}, 'param_groups': [{'lr': 1e-4}]}
    torch.save(ckpt, src)
    out = tmp_path / 'out' / 'converted.pth'
    assert convert.command_line(
        source_format,
        [str(src), osp.join(REPO, config), str(out), *extra]) == 0
    converted = torch.load(out, map_location='cpu', weights_only=True)
    model = build(config)
    model.load_state_dict(converted['state_dict'], strict=True)
    return converted, model


def same(a, b):
    return a.shape == b.shape and torch.equal(a, b)


def test_poolformer_retinanet_mmdet2(tmp_path, capsys):
    src = legacy.poolformer_mmdet2('s12', 'retinanet')
    assert 'backbone.norm0.weight' not in src  # FORK_LAST3 checkpoint
    classes = tuple(f'class{i}' for i in range(80))
    converted, _ = run('mmdet2', src, tmp_path,
                       'configs/retinanet_poolformer_s12.py',
                       meta=dict(CLASSES=classes, mmdet_version='2.19.0'))
    sd = converted['state_dict']
    assert len(sd) == len(src)
    # backbone: renamed by the PoolFormer converter, 1x1 convs -> Linear
    assert same(sd['backbone.stages.1.blocks.0.mlp.fc1.weight'],
                src['backbone.network.2.0.mlp.fc1.weight'][:, :, 0, 0])
    assert same(sd['backbone.stages.3.downsample.conv.weight'],
                src['backbone.network.5.proj.weight'])
    assert same(sd['backbone.stages.2.blocks.5.layer_scale2.scale'],
                src['backbone.network.4.5.layer_scale_2'])
    for official, ours in (('norm2', 'norm1'), ('norm4', 'norm2'),
                           ('norm6', 'norm3')):
        assert same(sd[f'backbone.{ours}.weight'],
                    src[f'backbone.{official}.weight'])
    # neck and head: mmdet 2.19 names are mmdet 3.x names
    for key in ('neck.lateral_convs.0.conv.weight',
                'neck.fpn_convs.4.conv.weight',
                'bbox_head.cls_convs.3.conv.bias',
                'bbox_head.retina_cls.weight', 'bbox_head.retina_reg.bias'):
        assert same(sd[key], src[key])
    assert converted['meta']['dataset_meta']['classes'] == list(classes)
    assert 'loaded with strict=True' in capsys.readouterr().out


def test_poolformer_mask_rcnn_mmdet2(tmp_path):
    src = legacy.poolformer_mmdet2('s12', 'mask_rcnn')
    converted, _ = run('mmdet2', src, tmp_path,
                       'configs/mask_rcnn_poolformer_s12.py')
    sd = converted['state_dict']
    assert len(sd) == len(src)
    assert same(sd['backbone.norm0.bias'], src['backbone.norm0.bias'])
    for key in ('rpn_head.rpn_cls.weight',
                'roi_head.bbox_head.shared_fcs.0.weight',
                'roi_head.bbox_head.fc_cls.bias',
                'roi_head.mask_head.upsample.weight',
                'roi_head.mask_head.conv_logits.weight'):
        assert same(sd[key], src[key])


def test_poolformer_semfpn_mmseg0(tmp_path):
    src = legacy.poolformer_mmseg0('s12')
    converted, _ = run('mmseg0', src, tmp_path,
                       'configs/semfpn_poolformer_s12.py',
                       meta=dict(CLASSES=('wall', ) * 150,
                                 PALETTE=[[0, 0, 0]] * 150))
    sd = converted['state_dict']
    assert len(sd) == len(src)
    for key in ('decode_head.scale_heads.3.4.bn.running_var',
                'decode_head.conv_seg.weight', 'neck.fpn_convs.3.conv.bias'):
        assert same(sd[key], src[key])
    assert same(sd['backbone.norm3.weight'], src['backbone.norm6.weight'])
    assert len(converted['meta']['dataset_meta']['palette']) == 150
    # an already converted checkpoint passes through unchanged, its
    # dataset_meta kept (it used to be dropped)
    again, _ = run('mmseg0', sd, tmp_path / 'again',
                   'configs/semfpn_poolformer_s12.py',
                   meta=converted['meta'])
    assert again['state_dict'].keys() == sd.keys()
    assert all(same(again['state_dict'][k], v) for k, v in sd.items())
    assert again['meta']['dataset_meta'] == converted['meta']['dataset_meta']


def _save(state_dict, path, container='state_dict'):
    torch.save({container: state_dict}, path)
    return str(path)


def test_unknown_keys_and_wrong_configs_are_refused(tmp_path):
    src = legacy.poolformer_mmdet2('s12', 'retinanet')
    src['bbox_head.atss_centerness.weight'] = torch.zeros(9, 256, 3, 3)
    out = str(tmp_path / 'out.pth')
    with pytest.raises(convert.ConversionError, match='atss_centerness'):
        convert.run_conversion(
            _save(src, tmp_path / 'a.pth'),
            osp.join(REPO, 'configs/retinanet_poolformer_s12.py'), out,
            'mmdet2')
    src = _save(legacy.poolformer_mmdet2('s12', 'retinanet'),
                tmp_path / 'b.pth')
    with pytest.raises(ValueError, match='missing keys|Shape mismatch'):
        convert.run_conversion(
            src, osp.join(REPO, 'configs/retinanet_poolformer_s24.py'), out,
            'mmdet2')
    with pytest.raises(ValueError, match='unexpected keys'):
        convert.run_conversion(
            src, osp.join(REPO, 'configs/mask_rcnn_poolformer_s12.py'), out,
            'mmdet2')
    assert not osp.exists(out)


def test_command_line_errors_name_the_problem(tmp_path, capsys):
    """The command line exits 2 with one line naming the problem, no
    traceback; a checkpoint of another source format names its converter."""
    src = _save(legacy.poolformer_mmseg0('s12'), tmp_path / 'seg.pth')
    with pytest.raises(SystemExit) as exit_info:
        convert.command_line('mmdet2', [
            src, osp.join(REPO, 'configs/semfpn_poolformer_s12.py'),
            str(tmp_path / 'out.pth')])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert 'mmseg 0.x segmentor checkpoint' in err
    assert 'tools/model_converters/mmseg0_to_mmseg1.py' in err


def test_family_option_checks_the_config(tmp_path):
    src = _save(legacy.poolformer_mmdet2('s12', 'retinanet'),
                tmp_path / 'src.pth')
    config = osp.join(REPO, 'configs/retinanet_poolformer_s12.py')
    out = str(tmp_path / 'out.pth')
    with pytest.raises(convert.ConversionError,
                       match="--family ResT but the config's backbone is "
                       'PoolFormer'):
        convert.run_conversion(src, config, out, 'mmdet2', family='ResT')
    with pytest.raises(convert.ConversionError, match='valid: .*PoolFormer'):
        convert.run_conversion(src, config, out, 'mmdet2', family='Nope')
    report = convert.run_conversion(src, config, out, 'mmdet2',
                                    family='PoolFormer')
    assert report.family == 'PoolFormer' and report.strict


def test_allow_partial_saves_and_reports(tmp_path):
    state = legacy.poolformer_mmdet2('s12', 'retinanet')
    del state['bbox_head.retina_cls.bias']
    src = _save(state, tmp_path / 'src.pth')
    config = osp.join(REPO, 'configs/retinanet_poolformer_s12.py')
    out = str(tmp_path / 'out.pth')
    with pytest.raises(ValueError, match=r'1 missing keys '
                       r"\['bbox_head.retina_cls.bias'\]"):
        convert.run_conversion(src, config, out, 'mmdet2')
    report = convert.run_conversion(src, config, out, 'mmdet2',
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
        convert.run_conversion(
            _save(state, tmp_path / 'src.pth'),
            osp.join(REPO, 'configs/retinanet_poolformer_s12.py'),
            str(tmp_path / 'out.pth'), 'mmdet2')


def test_converter_scripts_run_as_installed_commands():
    """The converters are thin command lines over mmmetaformer.convert:
    runnable from any directory without path tricks."""
    for fmt, script in convert.CONVERTER_SCRIPTS.items():
        result = subprocess.run(
            [sys.executable, osp.join(REPO, script), '--help'],
            cwd='/', capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert '--family' in result.stdout and '--allow-partial' in \
            result.stdout


# ------------------------------------------------------- before loading
def test_check_load_from_names_the_converter(tmp_path):
    """An official mmdet 2.x checkpoint given to load_from unconverted
    would leave the backbone random (mmengine loads non-strictly): the check
    names the converter; the converted file passes."""
    config = osp.join(REPO, 'configs/retinanet_poolformer_s12.py')
    src = _save(legacy.poolformer_mmdet2('s12', 'retinanet'),
                tmp_path / 'src.pth')
    model = build('configs/retinanet_poolformer_s12.py')
    with pytest.raises(ValueError) as info:
        convert.check_load_from(src, model, config)
    message = str(info.value)
    assert 'mmdet 2.x detector checkpoint' in message
    assert (f'python tools/model_converters/mmdet2_to_mmdet3.py {src} '
            f'{config} converted.pth') in message
    out = str(tmp_path / 'converted.pth')
    convert.run_conversion(src, config, out, 'mmdet2')
    assert convert.check_load_from(out, model, config) is None
    d2 = _save(legacy.rest_detectron2('rest_small', 'retinanet'),
               tmp_path / 'd2.pth', container='model')
    with pytest.raises(ValueError, match='detectron2_to_mmdet3.py'):
        convert.check_load_from(
            d2, build('configs/retinanet_rest_small.py'))


def test_check_checkpoint_fits_lists_missing_and_unexpected(tmp_path):
    config = osp.join(REPO, 'configs/retinanet_poolformer_s12.py')
    model = build('configs/retinanet_poolformer_s12.py')
    state = dict(model.state_dict())
    assert convert.check_checkpoint_fits(
        _save(state, tmp_path / 'ok.pth'), model, config) == []
    del state['bbox_head.retina_reg.weight']
    state['bbox_head.atss_centerness.weight'] = torch.zeros(1)
    path = _save(state, tmp_path / 'bad.pth')
    with pytest.raises(ValueError) as info:
        convert.check_checkpoint_fits(path, model, config)
    message = str(info.value)
    assert '1 model keys missing from the checkpoint: ' \
        'bbox_head.retina_reg.weight' in message
    assert '1 checkpoint keys not in the model: ' \
        'bbox_head.atss_centerness.weight' in message
    problems = convert.check_checkpoint_fits(path, model, config,
                                             allow_partial=True)
    assert len(problems) == 2


# ---------------------------------------------------------------- detectron2
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

    d2 = convert
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


def test_tools_have_no_path_tricks():
    """The command lines import the installed package: no ``sys.path``
    inserts, file-path module loading or ``sys.modules`` lookups."""
    import glob
    import re
    scripts = glob.glob(osp.join(REPO, 'tools', '*.py')) + glob.glob(
        osp.join(REPO, 'tools', 'model_converters', '*.py'))
    assert len(scripts) >= 6
    pattern = re.compile(r'sys\.path|spec_from_file_location|sys\.modules|'
                         r'SourceFileLoader|runpy')
    offenders = {}
    for script in scripts:
        with open(script) as f:
            found = pattern.findall(f.read())
        if found:
            offenders[osp.relpath(script, REPO)] = found
    assert not offenders


def test_checkpoint_of_another_family_is_named(tmp_path):
    """A PoolFormer detector file given with a ResT config is named as
    such before anything is converted."""
    src = _save(legacy.poolformer_mmdet2('s12', 'retinanet'),
                tmp_path / 'src.pth')
    with pytest.raises(convert.ConversionError) as info:
        convert.run_conversion(
            src, osp.join(REPO, 'configs/retinanet_rest_small.py'),
            str(tmp_path / 'out.pth'), 'mmdet2')
    message = str(info.value)
    assert "backbone.* keys are a PoolFormer checkpoint (official key " \
        "names, arch 's12'" in message
    assert "the config's backbone is ResT" in message


def test_load_from_classifier_names_the_init_cfg_route(tmp_path):
    """An mmpretrain PoolFormer classifier given as load_from was called
    "an mmdet 2.x detector checkpoint" with a converter command that then
    failed; the route that works is the backbone's init_cfg."""
    state = legacy.prefixed('backbone.', legacy.official_backbone(
        'poolformer_s12', drop=['norm0.', 'norm2.', 'norm4.']))
    state['head.fc.weight'] = torch.zeros(1000, 512)
    state['head.fc.bias'] = torch.zeros(1000)
    path = _save(state, tmp_path / 'cls.pth')
    config = 'configs/retinanet_poolformer_s12.py'
    with pytest.raises(ValueError) as info:
        convert.check_load_from(path, build(config), config)
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
