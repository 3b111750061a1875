"""Tests of mmmetaformer.runner.replay: the new schedule replayed to the
resumed step."""
from mmmetaformer.runner import replay
from tests.test_runner.utils import interval_checkpoint_runner


def test_replay_schedule_matches_training(tmp_path):
    """Replaying the freshly built schedulers to the resumed step gives the
    optimizer and scheduler state that training itself reached."""
    sched = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=3),
             dict(type='CosineAnnealingLR', T_max=5, by_epoch=False)]
    trained = interval_checkpoint_runner(tmp_path / 'a', max_iters=4,
                                         param_scheduler=sched)
    trained.train()
    fresh = interval_checkpoint_runner(tmp_path / 'b', max_iters=4,
                                       param_scheduler=sched)
    fresh.optim_wrapper = fresh.build_optim_wrapper(fresh.optim_wrapper)
    fresh.param_schedulers = fresh.build_param_scheduler(
        fresh.param_schedulers)
    replay.replay_schedule(fresh, 0, 4)
    assert fresh.optim_wrapper.get_lr() == trained.optim_wrapper.get_lr()
    for a, b in zip(fresh.param_schedulers, trained.param_schedulers):
        assert a.last_step == b.last_step and \
            a._last_value == b._last_value
