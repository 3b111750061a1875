"""ValidateBeforeTrainHook: one validation before the first update."""
import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmmetaformer.engine.hooks import ValidateBeforeTrainHook  # noqa: F401


class _ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, inputs, mode='tensor'):
        x = torch.stack(inputs)
        if mode == 'loss':
            return dict(loss=((x * self.weight - 1)**2).mean())
        return [self.weight.detach().clone() for _ in x]


class _RecordWeight(BaseMetric):
    """Reports the model's weight at evaluation time; keeps every call."""
    calls = []

    def process(self, data_batch, data_samples):
        self.results.append(float(data_samples[0]))

    def compute_metrics(self, results):
        _RecordWeight.calls.append(results[0])
        return dict(weight=results[0])


def _runner(tmp_path, hooks, val=True):
    data = [dict(inputs=torch.ones(1)) for _ in range(4)]
    loader = dict(dataset=data, sampler=dict(type='DefaultSampler',
                                             shuffle=False),
                  batch_size=2, collate_fn=dict(type='pseudo_collate'))
    return Runner(
        model=_ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=loader,
        val_dataloader=loader if val else None,
        val_evaluator=dict(type=_RecordWeight) if val else None,
        val_cfg=dict() if val else None,
        train_cfg=dict(by_epoch=True, max_epochs=1, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        custom_hooks=hooks,
        default_hooks=dict(checkpoint=None),
        experiment_name=f'hook_test_{id(tmp_path)}',
        default_scope='mmengine',
        log_level='WARNING')


def test_validates_before_first_update(tmp_path):
    _RecordWeight.calls = []
    runner = _runner(tmp_path,
                     [dict(type='mmmetaformer.ValidateBeforeTrainHook')])
    runner.train()
    # Before training (weight still 0), then the regular end-of-epoch val.
    assert len(_RecordWeight.calls) == 2
    assert _RecordWeight.calls[0] == 0.0
    assert _RecordWeight.calls[1] != 0.0


def test_without_hook_validates_once(tmp_path):
    _RecordWeight.calls = []
    _runner(tmp_path, []).train()
    assert len(_RecordWeight.calls) == 1


def test_needs_a_validation_loop(tmp_path):
    runner = _runner(tmp_path,
                     [dict(type='mmmetaformer.ValidateBeforeTrainHook')],
                     val=False)
    with pytest.raises(ValueError, match='val_dataloader'):
        runner.train()
