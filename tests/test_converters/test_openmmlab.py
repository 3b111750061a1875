"""mmmetaformer.converters.openmmlab: official mmdet 2.x / mmseg 0.x
PoolFormer checkpoints (synthetic, with the official key layouts and shapes,
see ``legacy_checkpoints``) convert into checkpoints that load with
``strict=True`` into the models of this package's configs, with every
tensor carried over."""
from tests.test_converters.helpers import run, same
from tests.test_tools import legacy_checkpoints as legacy


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
