"""Tests of mmmetaformer.runner.pretrained (allow_partial_pretrained is
tested with the checkpoint loading it enables, in tests/test_checkpoint.py).
"""
from mmmetaformer.runner.pretrained import drop_pretrained


def test_drop_pretrained_removes_every_pretrained_init_cfg():
    model = dict(
        type='EncoderDecoder',
        pretrained='imagenet.pth',  # mmseg's form
        backbone=dict(
            type='mmmetaformer.PoolFormer',
            init_cfg=dict(type='Pretrained', checkpoint='a.pth')),
        neck=dict(type='FPN', init_cfg=[
            dict(type='Pretrained', checkpoint='b.pth'),
            dict(type='Xavier', layer='Conv2d')]),
        heads=[dict(init_cfg=[dict(type='Pretrained', checkpoint='c.pth')])],
        other=dict(init_cfg=dict(type='Normal', std=0.01)))
    assert drop_pretrained(model) is model
    assert model['pretrained'] is None
    assert model['backbone']['init_cfg'] is None
    assert model['neck']['init_cfg'] == [dict(type='Xavier', layer='Conv2d')]
    assert model['heads'][0]['init_cfg'] is None  # nothing left: None
    assert model['other']['init_cfg'] == dict(type='Normal', std=0.01)


def test_allow_partial_reaches_no_head_of_this_package():
    """Only this package's backbones read ``allow_partial``; its heads
    (registered in the same registry once a config imports them) get their
    init_cfg untouched, as mmengine's ``PretrainedInit`` would refuse the
    keyword."""
    import pytest
    pytest.importorskip('mmdet')
    import mmmetaformer.models.dense_heads  # noqa: F401  (registers heads)
    from mmmetaformer.runner.pretrained import allow_partial_pretrained
    head_init = dict(type='Pretrained', checkpoint='head.pth')
    model = dict(
        type='RetinaNet',
        backbone=dict(type='ResT', init_cfg=dict(type='Pretrained',
                                                  checkpoint='a.pth')),
        bbox_head=dict(type='mmmetaformer.Detectron2RetinaHead',
                       init_cfg=dict(head_init)))
    changes = allow_partial_pretrained(model)
    assert model['backbone']['init_cfg']['allow_partial'] is True
    assert model['bbox_head']['init_cfg'] == head_init
    assert changes == ['ResT init_cfg.allow_partial=True (--allow-partial)']
