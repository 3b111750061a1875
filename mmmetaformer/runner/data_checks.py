"""The data a config reads, checked before a Runner is built, so that a
missing dataset ends the run at once with a message naming the path and how
to provide it (:func:`missing_data_paths`, :func:`missing_data_message`,
:class:`MissingDataError`)."""
import os
import os.path as osp
import re
from typing import Dict, Iterator, List, Mapping, Sequence, Tuple

_REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: Where the configs define their data roots (one place, env-overridable).
PATHS_CONFIG = osp.join(_REPO_ROOT, 'configs', '_base_', 'datasets',
                        'paths.py')


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


def is_remote(path: str) -> bool:
    return '://' in path


def _join(root: str, path: str) -> str:
    """Join as mmengine's ``BaseDataset`` does: relative to ``data_root``."""
    if not root or osp.isabs(path) or is_remote(path):
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
        if path and not is_remote(path) and not osp.exists(path):
            missing.append((key, path))

    for section in sections:
        loader = cfg.get(section)
        if not loader:
            continue
        for dataset in _dataset_cfgs(loader.get('dataset')):
            root = dataset.get('data_root') or ''
            where = f'{section}.dataset'
            if root and not is_remote(root) and not osp.isdir(root):
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


class MissingDataError(FileNotFoundError):
    """The data a config needs is not on disk; the message says what to do."""
