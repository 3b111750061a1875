"""Tests of mmmetaformer.runner.resume_config: a resumed run's config
compared with its checkpoint's."""
from mmengine.config import Config

from mmmetaformer.runner import resume_config


def test_config_differences():
    old = dict(backbone=dict(arch='s12', init_cfg=dict(checkpoint='a.pth'),
                             out_indices=(0, 1)), neck=dict(c=64))
    new = dict(backbone=dict(arch='s24', init_cfg=None, out_indices=[0, 1],
                             drop_path_rate=0.1), neck=dict(c=64))
    assert resume_config.config_differences(old, new, 'model',
                                            ('init_cfg', )) == [
        ('model.backbone.arch', 's12', 's24'),
        ('model.backbone.drop_path_rate', '<not set>', 0.1),
    ]  # a tuple and a list with the same items are the same
    assert resume_config.config_differences([dict(end=2)], [dict(end=3)],
                                            'param_scheduler') == [
        ('param_scheduler[0].end', 2, 3)]
    assert resume_config.config_differences([1], [1, 2], 'x') == [
        ('x', [1], [1, 2])]


def test_resume_changes_applied_and_refused(tmp_path, monkeypatch):
    recorded = Config(dict(
        model=dict(type='Net', init_cfg=dict(type='Pretrained')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        param_scheduler=[dict(type='CosineAnnealingLR', T_max=2, end=2)],
        train_cfg=dict(max_epochs=2)))
    monkeypatch.setattr(resume_config, 'checkpoint_config',
                        lambda path: recorded)
    cfg = recorded.copy()
    cfg.merge_from_dict({'train_cfg.max_epochs': 3,
                         'optim_wrapper.optimizer.lr': 0.2,
                         'model.init_cfg': None})
    applied, refused = resume_config.resume_changes(cfg, 'ckpt.pth')
    assert applied == ['train_cfg.max_epochs: 2 -> 3',
                       'optim_wrapper.optimizer.lr: 0.1 -> 0.2']
    assert refused == []  # init_cfg does not matter when resuming
    cfg.merge_from_dict({'optim_wrapper.optimizer.type': 'AdamW',
                         'optim_wrapper.paramwise_cfg': dict(norm_decay_mult=0),
                         'model.depth': 2})
    applied, refused = resume_config.resume_changes(cfg, 'ckpt.pth')
    assert refused == ["model.depth: '<not set>' -> 2",
                       "optim_wrapper.optimizer.type: 'SGD' -> 'AdamW'",
                       'optim_wrapper.paramwise_cfg: False -> True']
    assert 'optim_wrapper.optimizer.type' not in ' '.join(applied)
