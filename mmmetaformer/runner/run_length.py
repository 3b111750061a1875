"""The length of a run changed with everything measured against it
(``--epochs`` / ``--iters``, :func:`rescale_run_length`)."""
from typing import List, Mapping, Optional, Tuple

#: Scheduler arguments counted in the scheduler's unit (epochs when
#: ``by_epoch``, else iterations).
_SCHEDULER_LENGTH_KEYS = ('begin', 'end', 'T_max', 'milestones', 'step_size',
                          'periods', 'total_steps')
#: mmengine's "until the end of training" value for ``end``.
_INF = int(1e9)


def _train_unit(cfg) -> Tuple[str, int]:
    """``('epochs', max_epochs)`` or ``('iters', max_iters)`` of
    ``cfg.train_cfg``."""
    train_cfg = cfg.get('train_cfg') or {}
    if 'max_epochs' in train_cfg:
        return 'epochs', train_cfg['max_epochs']
    if 'max_iters' in train_cfg:
        return 'iters', train_cfg['max_iters']
    raise ValueError('--epochs/--iters need train_cfg.max_epochs or '
                     'train_cfg.max_iters in the config; it has neither '
                     f'(train_cfg={dict(train_cfg)!r}).')


def _scale_length(value, old_total: int, new_total: int):
    """A length/position ``value`` of a run of ``old_total`` units in a run
    of ``new_total`` units: 0 stays 0, ``old_total`` becomes ``new_total``,
    "until the end" (>= 1e9) is kept, anything else is scaled and rounded,
    at least 1. Lists are scaled element-wise."""
    if isinstance(value, (list, tuple)):
        return type(value)(
            _scale_length(v, old_total, new_total) for v in value)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    if value == 0 or value >= _INF:
        return value
    if value == old_total:
        return new_total
    scaled = value * new_total / old_total
    return max(1, round(scaled)) if isinstance(value, int) else scaled


def rescale_run_length(cfg,
                       epochs: Optional[int] = None,
                       iters: Optional[int] = None) -> List[str]:
    """Change the length of a run and everything measured against it.

    With ``epochs`` (epoch-based configs, ``train_cfg.max_epochs``) or
    ``iters`` (iteration-based, ``train_cfg.max_iters``) = ``N`` and the
    config's length ``M``, every value counted in the same unit is scaled by
    ``N / M`` (rounded, at least 1; ``M`` itself becomes ``N``, 0 stays 0):

    * ``train_cfg``: the length, ``val_interval``, ``val_begin`` and the
      milestones of ``dynamic_intervals``;
    * each ``param_scheduler`` counted in that unit (``by_epoch=True``
      for epochs, the default; ``by_epoch=False`` for iterations): ``begin``,
      ``end``, ``T_max``, ``milestones``, ``step_size``, ``periods``,
      ``total_steps``;
    * ``default_hooks.checkpoint``: ``interval`` and ``save_begin`` when it
      counts in that unit.

    Schedulers in the other unit (an iteration-based warm-up in an
    epoch-based config) and the logger interval are kept, and the kept
    schedulers are named in the returned lines.

    Args:
        cfg (mmengine.Config): Modified in place.
        epochs (int, optional): New number of epochs.
        iters (int, optional): New number of iterations.

    Returns:
        list[str]: One line per changed or deliberately kept value.

    Raises:
        ValueError: Both or neither given, a value < 1, or the unit does not
            match the config's loop (naming the option to use).
    """
    option, new_total = _requested_length(epochs, iters)
    unit, old_total = _train_unit(cfg)
    if (unit == 'epochs') != (epochs is not None):
        other = '--iters' if unit == 'iters' else '--epochs'
        raise ValueError(
            f'{option}: this config trains for a number of {unit} '
            f'(train_cfg.max_{unit}={old_total}); use {other} N.')
    rescaler = _Rescaler(old_total, new_total, by_epoch=unit == 'epochs')
    _rescale_train_cfg(cfg.train_cfg, unit, rescaler)
    _rescale_schedulers(cfg.get('param_scheduler') or [], rescaler)
    _rescale_checkpoint_hook(
        (cfg.get('default_hooks') or {}).get('checkpoint'), rescaler)
    return [f'{option} {new_total}: {c}' for c in rescaler.changes]


def _requested_length(epochs: Optional[int],
                      iters: Optional[int]) -> Tuple[str, int]:
    """``('--epochs', epochs)`` or ``('--iters', iters)``, checked: exactly
    one given, an integer >= 1."""
    if (epochs is None) == (iters is None):
        raise ValueError('give exactly one of --epochs and --iters')
    option, new_total = ('--epochs', epochs) if epochs is not None else (
        '--iters', iters)
    if isinstance(new_total, bool) or not isinstance(new_total, int) \
            or new_total < 1:
        raise ValueError(f'{option} must be an integer >= 1, got '
                         f'{new_total!r}')
    return option, new_total


class _Rescaler:
    """Scales config values counted in the run's unit (epochs when
    ``by_epoch``, else iterations) from a run of ``old_total`` units to one
    of ``new_total`` (:func:`_scale_length`) and records each change."""

    def __init__(self, old_total: int, new_total: int, by_epoch: bool):
        self.old_total = old_total
        self.new_total = new_total
        self.by_epoch = by_epoch
        self.changes: List[str] = []

    def value(self, value):
        """``value`` scaled (not recorded)."""
        return _scale_length(value, self.old_total, self.new_total)

    def key(self, owner, key: str, where: str, label: str = '') -> None:
        """Scale ``owner[key]`` in place, if present; a change is recorded
        as ``'<where>.<key><label> old -> new'``."""
        if key not in owner:
            return
        old = owner[key]
        new = self.value(old)
        if new != old:
            owner[key] = new
            self.changes.append(f'{where}.{key}{label} {old} -> {new}')


def _rescale_train_cfg(train_cfg, unit: str, rescaler: _Rescaler) -> None:
    """The run length, ``val_interval``, ``val_begin`` and the milestones
    of ``dynamic_intervals``."""
    rescaler.key(train_cfg, f'max_{unit}', 'train_cfg')
    rescaler.key(train_cfg, 'val_interval', 'train_cfg')
    rescaler.key(train_cfg, 'val_begin', 'train_cfg')
    if train_cfg.get('dynamic_intervals'):
        old = train_cfg['dynamic_intervals']
        new = [(rescaler.value(m), rescaler.value(i)) for m, i in old]
        if new != [tuple(x) for x in old]:
            train_cfg['dynamic_intervals'] = new
            rescaler.changes.append(
                f'train_cfg.dynamic_intervals {old} -> {new}')


def _rescale_schedulers(schedulers, rescaler: _Rescaler) -> None:
    """The length keys of each scheduler counted in the run's unit; those
    counted in the other unit are kept and named."""
    if isinstance(schedulers, Mapping):
        schedulers = [schedulers]
    for i, scheduler in enumerate(schedulers):
        where, label = f'param_scheduler[{i}]', f' ({scheduler.get("type")})'
        if scheduler.get('by_epoch', True) != rescaler.by_epoch:
            kept = ', '.join(f'{k}={scheduler[k]}'
                             for k in _SCHEDULER_LENGTH_KEYS
                             if k in scheduler)
            other_unit = 'iterations' if rescaler.by_epoch else 'epochs'
            rescaler.changes.append(
                f'{where}{label} kept: counted in {other_unit}' +
                (f' ({kept})' if kept else ''))
            continue
        for key in _SCHEDULER_LENGTH_KEYS:
            rescaler.key(scheduler, key, where, label)


def _rescale_checkpoint_hook(hook, rescaler: _Rescaler) -> None:
    """``interval`` and ``save_begin`` of the checkpoint hook when it counts
    in the run's unit; otherwise it is kept and named."""
    if not isinstance(hook, Mapping):
        return
    if hook.get('by_epoch', True) == rescaler.by_epoch:
        rescaler.key(hook, 'interval', 'default_hooks.checkpoint')
        rescaler.key(hook, 'save_begin', 'default_hooks.checkpoint')
    else:
        rescaler.changes.append(
            'default_hooks.checkpoint kept: counted in ' +
            ('iterations' if rescaler.by_epoch else 'epochs'))
