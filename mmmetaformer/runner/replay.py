"""A resumed run continued with the new config's optimizer settings and
schedule instead of the checkpoint's (:func:`apply_config_on_resume`), the
fresh schedulers replayed to the resumed step (:func:`replay_schedule`)."""
import copy
import warnings
from typing import Mapping, Tuple

from mmmetaformer.runner.resume import ResumeError

def _optimizers(optim_wrapper) -> list:
    """The optimizer wrappers of an ``OptimWrapper`` / ``OptimWrapperDict``."""
    from mmengine.optim import OptimWrapperDict
    if isinstance(optim_wrapper, OptimWrapperDict):
        return list(optim_wrapper.values())
    return [optim_wrapper]


def _schedulers(param_schedulers) -> list:
    """The schedulers of a Runner's ``param_schedulers`` (list or dict)."""
    if isinstance(param_schedulers, Mapping):
        return [s for group in param_schedulers.values() for s in group]
    return list(param_schedulers or [])


def _schedule_state(runner) -> Tuple[list, list]:
    """The optimizer hyper-parameters (every param-group key but
    ``params``) and the scheduler states of a built Runner."""
    groups = [[{k: copy.deepcopy(v)
                for k, v in group.items() if k != 'params'}
               for group in wrapper.param_groups]
              for wrapper in _optimizers(runner.optim_wrapper)]
    states = [copy.deepcopy(s.state_dict())
              for s in _schedulers(runner.param_schedulers)]
    return groups, states


def _restore_schedule_state(runner, groups: list, states: list) -> None:
    """Put back what :func:`_schedule_state` returned, keeping the
    optimizer's per-parameter state (momenta)."""
    for wrapper, saved in zip(_optimizers(runner.optim_wrapper), groups):
        for group, values in zip(wrapper.param_groups, saved):
            for key in [k for k in group if k != 'params']:
                del group[key]
            group.update(copy.deepcopy(values))
    for scheduler, state in zip(_schedulers(runner.param_schedulers),
                                states):
        scheduler.load_state_dict(copy.deepcopy(state))


def replay_schedule(runner, epochs: int, iters: int) -> None:
    """Step a Runner's freshly built schedulers as training would have
    stepped them up to ``epochs`` finished epochs and ``iters`` iterations:
    the iteration-based ones after every iteration, the epoch-based ones
    after every epoch of ``len(train_dataloader)`` iterations (epoch-based
    loops only), as mmengine's ``ParamSchedulerHook`` does.

    Raises:
        ResumeError: A scheduler steps on validation metrics
            (``ReduceOnPlateau``), which cannot be replayed.
    """
    from mmengine.runner import EpochBasedTrainLoop
    schedulers = _schedulers(runner.param_schedulers)
    if any(getattr(s, 'need_val_args', False) for s in schedulers):
        raise ResumeError(
            'the schedule changed, and a scheduler that steps on validation '
            'metrics (ReduceOnPlateau) cannot be replayed: resume with the '
            'checkpoint\'s schedule (undo the changes).')
    per_iter = [s for s in schedulers if not s.by_epoch]
    per_epoch = [s for s in schedulers if s.by_epoch]
    epoch_length = iters
    if isinstance(runner.train_loop, EpochBasedTrainLoop):
        epoch_length = len(runner.train_dataloader)
    else:
        per_epoch, epochs = [], 0
    done = 0
    with warnings.catch_warnings():  # "scheduler.step() before optimizer"
        warnings.simplefilter('ignore')
        for epoch in range(epochs + 1):
            for _ in range(min(epoch_length, iters - done)):
                for scheduler in per_iter:
                    scheduler.step()
                done += 1
            if epoch < epochs:
                for scheduler in per_epoch:
                    scheduler.step()


def apply_config_on_resume(runner) -> None:
    """Make ``runner.resume`` continue with the Runner's own optimizer
    settings and schedule instead of the checkpoint's.

    mmengine's ``Runner.resume`` restores the optimizer's parameter groups
    (lr, weight decay, ``initial_lr``...) and every scheduler's state
    (``begin``, ``end``, ``T_max``, its step...) from the checkpoint, so a
    run resumed with a longer schedule or another lr would continue on the
    old ones. After that restore, this puts back the hyper-parameters and
    the freshly built schedulers of the new config and replays the
    schedulers up to the resumed epoch and iteration
    (:func:`replay_schedule`): the lr at every later step is the one a run
    started with the new config would have there. The weights, the
    optimizer's per-parameter state (momenta, moments) and the loop's
    position are the checkpoint's.

    Args:
        runner (mmengine.runner.Runner): A Runner that will resume; its
            ``resume`` method is replaced on this instance.
    """
    original = runner.resume

    def resume(filename, *args, **kwargs):
        groups, states = _schedule_state(runner)
        original(filename, *args, **kwargs)
        _restore_schedule_state(runner, groups, states)
        replay_schedule(runner, runner.epoch, runner.iter)
        name, values = next(iter(runner.optim_wrapper.get_lr().items()))
        runner.logger.info(
            f'the schedule of this config replayed to epoch {runner.epoch}, '
            f'iter {runner.iter}: {name} {values[0]:.6g} (first group)')

    runner.resume = resume
