"""Shared set-up for ``tools/train.py`` and ``tools/test.py``.

* :func:`missing_data_paths` / :func:`missing_data_message`: check, before a
  Runner is built, that the files and folders a config's dataloaders (and
  evaluators) read exist, so that a missing dataset ends the run at once with
  a message naming the path and how to provide it, not with a traceback
  from inside a dataset class minutes later.
* :func:`prepare_runtime`: the CPU-specific adjustments of
  :mod:`mmmetaformer.compat` (distributed gloo group, SyncBN -> BN, threads
  and workers), applied to a loaded config.
"""
import os
import os.path as osp
import re
from typing import Dict, Iterator, List, Mapping, Sequence, Tuple

import torch

from mmmetaformer import compat

#: Where the configs define their data roots (one place, env-overridable).
PATHS_CONFIG = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', '_base_',
    'datasets', 'paths.py')


def _dataset_cfgs(node) -> Iterator[Mapping]:
    """Every dataset-like dict (one with ``data_root``, ``ann_file`` or
    ``data_prefix``) under ``node``, wrappers (RepeatDataset,
    ConcatDataset, ...) included."""
    if isinstance(node, Mapping):
        if any(k in node for k in ('data_root', 'ann_file', 'data_prefix')):
            yield node
        for key in ('dataset', 'datasets'):
            if key in node:
                yield from _dataset_cfgs(node[key])
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _dataset_cfgs(item)


def _is_remote(path: str) -> bool:
    return '://' in path


def _join(root: str, path: str) -> str:
    """Join as mmengine's ``BaseDataset`` does: relative to ``data_root``."""
    if not root or osp.isabs(path) or _is_remote(path):
        return path
    return osp.join(root, path)


def missing_data_paths(cfg, sections: Sequence[str]) -> List[Tuple[str, str]]:
    """Data files/folders a config needs that do not exist.

    For each ``<section>`` (e.g. ``'train_dataloader'``) the dataset configs
    (through wrappers) are checked: ``data_root``, ``ann_file`` (joined with
    ``data_root`` when relative) and every ``data_prefix`` entry (likewise).
    For ``val_dataloader``/``test_dataloader`` the matching evaluator's
    ``ann_file`` is checked too. Remote paths (``s3://`` etc.) are skipped.

    Args:
        cfg (mmengine.Config): The loaded config.
        sections (Sequence[str]): Dataloader keys to check.

    Returns:
        list[tuple[str, str]]: ``(config key, missing path)`` pairs.
    """
    missing = []

    def check(key: str, path: str) -> None:
        if path and not _is_remote(path) and not osp.exists(path):
            missing.append((key, path))

    for section in sections:
        loader = cfg.get(section)
        if not loader:
            continue
        for dataset in _dataset_cfgs(loader.get('dataset')):
            root = dataset.get('data_root') or ''
            where = f'{section}.dataset'
            if root and not _is_remote(root) and not osp.isdir(root):
                missing.append((f'{where}.data_root', root))
                continue  # everything below it is missing too
            ann_file = dataset.get('ann_file')
            if ann_file:
                check(f'{where}.ann_file', _join(root, ann_file))
            prefix = dataset.get('data_prefix') or {}
            if isinstance(prefix, Mapping):
                for name, value in prefix.items():
                    if isinstance(value, str) and value:
                        check(f'{where}.data_prefix.{name}',
                              _join(root, value))
        evaluator_key = section.replace('_dataloader', '_evaluator')
        evaluators = cfg.get(evaluator_key)
        if section != 'train_dataloader' and evaluators:
            if isinstance(evaluators, Mapping):
                evaluators = [evaluators]
            for i, evaluator in enumerate(evaluators):
                if isinstance(evaluator, Mapping) and evaluator.get(
                        'ann_file'):
                    check(f'{evaluator_key}.ann_file', evaluator['ann_file'])
    # The same root often appears in several sections: report each once.
    seen, unique = set(), []
    for key, path in missing:
        if path not in seen:
            seen.add(path)
            unique.append((key, path))
    return unique


def data_root_variables() -> Dict[str, str]:
    """The environment variables that ``configs/_base_/datasets/paths.py``
    reads (``'{{$VAR:default}}'`` in its assignments) and their current
    values (the variable if set, else the default)."""
    if not osp.isfile(PATHS_CONFIG):
        return {}
    found = {}
    with open(PATHS_CONFIG, encoding='utf-8') as f:
        for line in f:
            if line.lstrip().startswith('#'):
                continue
            for name, default in re.findall(r"\{\{\$(\w+):([^}]*)\}\}",
                                            line):
                found[name] = os.environ.get(name, default)
    return found


def missing_data_message(config_path: str,
                         missing: Sequence[Tuple[str, str]],
                         command: str = 'python tools/train.py') -> str:
    """The message printed when :func:`missing_data_paths` found something.

    Args:
        config_path (str): The config file, for the message.
        missing (Sequence[tuple[str, str]]): Its result.
        command (str): The command to show in the example.

    Returns:
        str: A multi-line explanation with the fix.
    """
    lines = [f'Data for {config_path} not found:']
    cwd = os.getcwd()
    for key, path in missing:
        shown = path if osp.isabs(path) else (
            f'{path} (relative to {cwd})')
        lines.append(f'  {key}: {shown}')
    variables = data_root_variables()
    # The variables whose value the missing paths start with.
    relevant = [
        name for name, value in variables.items()
        if value and any(path.startswith(value) for _, path in missing)
    ] or list(variables)
    if relevant:
        lines.append(
            'Point the configs at your copy with the environment variable '
            + ' / '.join(relevant) + ' (defined in configs/_base_/datasets/'
            'paths.py; keep the trailing slash), e.g.\n'
            f'  {relevant[0]}=/path/to/dataset/ {command} ...')
    lines.append('or override the paths with --cfg-options, e.g. '
                 f'--cfg-options {missing[0][0]}=/path/to/...')
    if 'MMMETAFORMER_DEMO_ROOT' in relevant:
        lines.append('The demo data is generated (in seconds) with '
                     'python tools/generate_demo_data.py --out '
                     f'{variables["MMMETAFORMER_DEMO_ROOT"]}')
    return '\n'.join(lines)


def prepare_runtime(cfg, launcher: str) -> List[str]:
    """Apply the CPU-specific fixes to a config before the Runner is built.

    On a torch without CUDA: a gloo process group for distributed launchers
    (:func:`mmmetaformer.compat.init_cpu_distributed`), the matching config
    changes (:func:`mmmetaformer.compat.adapt_cfg_for_cpu_distributed`) and
    deliberate threads/workers
    (:func:`mmmetaformer.compat.configure_cpu_threads`). With CUDA, nothing
    changes.

    Args:
        cfg (mmengine.Config): Modified in place.
        launcher (str): The ``--launcher`` value.

    Returns:
        list[str]: What was changed, for the log.
    """
    changes = []
    if launcher != 'none' and not torch.cuda.is_available():
        if compat.init_cpu_distributed(launcher):
            changes.append('initialised a gloo process group (CPU)')
        changes += compat.adapt_cfg_for_cpu_distributed(cfg)
    changes += compat.configure_cpu_threads(cfg).get('changes', [])
    return changes


def drop_pretrained(model_cfg: dict) -> dict:
    """Remove every ``init_cfg=dict(type='Pretrained', ...)`` (also inside a
    list of init_cfgs) and mmseg's ``pretrained=...`` from a model config,
    in place, so that building and initialising the model downloads nothing
    (e.g. when a dense checkpoint replaces the ImageNet weights).

    Returns:
        dict: ``model_cfg``.
    """
    if isinstance(model_cfg, dict):
        if model_cfg.get('pretrained') is not None:
            model_cfg['pretrained'] = None
        init_cfg = model_cfg.get('init_cfg')
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            model_cfg['init_cfg'] = None
        elif isinstance(init_cfg, list):
            model_cfg['init_cfg'] = [
                c for c in init_cfg if c.get('type') != 'Pretrained'
            ] or None
        for value in model_cfg.values():
            drop_pretrained(value)
    elif isinstance(model_cfg, (list, tuple)):
        for item in model_cfg:
            drop_pretrained(item)
    return model_cfg


class MissingDataError(FileNotFoundError):
    """The data a config needs is not on disk; the message says what to do."""


def build_runner(cfg, config_path: str, sections: Sequence[str],
                 launcher: str, command: str = 'python tools/train.py'):
    """Check the data of ``sections``, prepare the runtime and build the
    Runner of ``cfg`` (``runner_type`` honoured), as the tools do.

    Raises:
        MissingDataError: With :func:`missing_data_message` as its message,
            before anything is built.
    """
    missing = missing_data_paths(cfg, sections)
    if missing:
        raise MissingDataError(
            missing_data_message(config_path, missing, command))
    for change in prepare_runtime(cfg, launcher):
        print(f'[mmmetaformer] {change}')
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
