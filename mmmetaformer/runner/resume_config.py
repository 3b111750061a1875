"""Resume after a config change: what differs from the config the
checkpoint recorded (:func:`config_differences`, :func:`resume_changes`),
applied or refused with a message naming it (:func:`check_resume_config`)."""
import functools
import os
import os.path as osp
from typing import List, Mapping, Optional, Sequence, Tuple

from mmengine.config import Config

from mmmetaformer.runner.loaders import load_runner_checkpoint
from mmmetaformer.runner.resume import ResumeError

#: Config sections whose changes a resume applies (the training loop,
#: the optimizer settings and the schedule of the new config).
RESUME_APPLIED_SECTIONS = ('train_cfg', 'optim_wrapper', 'param_scheduler',
                           'auto_scale_lr')
#: Keys under ``model`` that a resume does not use (the weights come from
#: the checkpoint), so changing them is no difference.
_RESUME_IGNORED_MODEL_KEYS = ('init_cfg', 'pretrained')
_MISSING = '<not set>'


def _normalise(value):
    """Mappings as dicts and tuples as lists, recursively, for comparing a
    config with the one a checkpoint recorded."""
    if isinstance(value, Mapping):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value


def config_differences(old, new, where: str,
                       ignore: Sequence[str] = ()) -> List[Tuple[str, object,
                                                                 object]]:
    """Where two config values differ, key by key.

    Args:
        old: The value a checkpoint recorded.
        new: The current value.
        where (str): The key path of both (e.g. ``'model'``).
        ignore (Sequence[str]): Mapping keys skipped at any depth.

    Returns:
        list[tuple[str, object, object]]: ``(key path, old, new)``; a key
        only one side has is ``'<not set>'`` on the other.
    """
    old, new = _normalise(old), _normalise(new)
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in list(old) + [k for k in new if k not in old]:
            if key in ignore:
                continue
            found += config_differences(old.get(key, _MISSING),
                                        new.get(key, _MISSING),
                                        f'{where}.{key}', ignore)
        return found
    if isinstance(old, list) and isinstance(new, list) \
            and len(old) == len(new):
        found = []
        for i, (a, b) in enumerate(zip(old, new)):
            found += config_differences(a, b, f'{where}[{i}]', ignore)
        return found
    return [] if old == new else [(where, old, new)]


def checkpoint_config(path: str) -> Optional['Config']:
    """The config a Runner checkpoint recorded (``meta['cfg']``), or None
    when it has none (a checkpoint written by a Runner built without a
    config)."""
    text = _checkpoint_config_text(path, *_file_key(path))
    if not text:
        return None
    return Config.fromstring(text, file_format='.py')


def _file_key(path: str) -> Tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=4)
def _checkpoint_config_text(path: str, size: int, mtime_ns: int) -> str:
    """``meta['cfg']`` of a checkpoint, read once per file version (the
    size and modification time are part of the cache key)."""
    meta = load_runner_checkpoint(path, map_location='cpu').get('meta')
    return (meta or {}).get('cfg') or ''


def resume_changes(cfg, path: str) -> Tuple[List[str], List[str]]:
    """What differs between the config a run is resumed with and the one
    its checkpoint recorded.

    Returns:
        tuple[list[str], list[str]]: The differences a resume applies
        (:data:`RESUME_APPLIED_SECTIONS`) and those it cannot apply (the
        model, the optimizer type and the optimizer's parameter groups),
        each as ``'key: old -> new'``. With no recorded config, the first
        list says so (the config's schedule is applied).
    """
    old = checkpoint_config(path)
    if old is None:
        return ['the checkpoint records no config to compare with'], []

    def lines(found):
        return [f'{key}: {a!r} -> {b!r}' for key, a, b in found]

    refused = config_differences(old.get('model'), cfg.get('model'), 'model',
                                 _RESUME_IGNORED_MODEL_KEYS)
    old_optim, new_optim = (c.get('optim_wrapper') or {} for c in (old, cfg))
    for key in ('optimizer.type', 'constructor', 'paramwise_cfg'):
        a, b = (get_path(c, key) for c in (old_optim, new_optim))
        if key == 'paramwise_cfg':  # only its presence changes the groups
            a, b = a is not _MISSING, b is not _MISSING
        if a != b:
            refused.append((f'optim_wrapper.{key}', a, b))
    refused_keys = {key for key, _, _ in refused}
    applied = [
        d for section in RESUME_APPLIED_SECTIONS
        for d in config_differences(old.get(section, _MISSING),
                                    cfg.get(section, _MISSING), section)
        if d[0] not in refused_keys
    ]
    return lines(applied), lines(refused)


def get_path(node, dotted: str):
    """The value at a dotted key path of nested mappings (e.g.
    ``'optim_wrapper.optimizer.type'``), or ``'<not set>'``."""
    for key in dotted.split('.'):
        if not isinstance(node, Mapping) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _refused_resume_message(path: str, refused: Sequence[str]) -> str:
    return '\n'.join(
        [f'--resume {path}: the config differs from the one the checkpoint '
         'was trained with in what a resume cannot change:'] +
        [f'  {line}  (checkpoint -> now)' for line in refused] + [
            'Choose: continue the run as it was (undo these changes, e.g. '
            'with --cfg-options KEY=OLD), or start a new run from its '
            'weights with the new config: another --work-dir, no --resume, '
            f'--cfg-options load_from={path} (a fresh optimizer and '
            'schedule; weights that do not fit are reported).'])


def check_resume_config(cfg) -> Tuple[List[str], bool]:
    """Compare a resumed run's config with its checkpoint's
    (:func:`resume_changes`) before the Runner is built.

    Args:
        cfg (mmengine.Config): The final config (``resume`` and a local
            ``load_from`` set; otherwise nothing is checked).

    Returns:
        tuple[list[str], bool]: Log lines naming each applied difference,
        and whether the Runner must apply them
        (:func:`apply_config_on_resume`).

    Raises:
        ResumeError: The model, the optimizer type or its parameter groups
            changed; the message names each difference and the choices.
    """
    path = cfg.get('load_from')
    if not (cfg.get('resume') and path) or '://' in path \
            or not osp.isfile(path):
        return [], False
    applied, refused = resume_changes(cfg, path)
    if refused:
        raise ResumeError(_refused_resume_message(path, refused))
    if not applied:
        return [], False
    return ([f'--resume: the config differs from {path}\'s; the new values '
             'apply (checkpoint -> now):'] + [f'  {a}' for a in applied] + [
                 '  the optimizer settings and the schedule are this '
                 'config\'s, replayed from the start to the resumed step; the '
                 'weights and the optimizer state (momenta) are the '
                 'checkpoint\'s. To continue with the checkpoint\'s values, '
                 'undo the changes.'
             ]), True
