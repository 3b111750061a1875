"""The model zoo: load and validate ``configs/metafiles/*.yml`` and generate
the model-zoo page from them (command line: ``tools/model_zoo.py``,
``--check`` to compare, ``--list`` for one line per row).

The tables live in ``docs/model_zoo.md`` between ``<!-- model-zoo:start -->``
and ``<!-- model-zoo:end -->``; everything between the markers is generated,
so edit the metafiles, never the tables.

Metafile format: the OpenMMLab convention (``Collections`` with ``Name``,
``Paper``, ``Code``; ``Models`` with ``Name``, ``In Collection``,
``Config``, ``Metadata``, ``Results``, ``Weights``) plus these keys:

================================  ============================================
key                               meaning
================================  ============================================
``Metadata.ImageNet Weights``     ImageNet checkpoint URL (null: none public)
``Metadata.Framework``            framework of the published run
``Results[].Metrics``             published values; ``null`` only when the
                                  number was not retrieved (Status says why)
``Results[].Test Protocol``       evaluation protocol of the number (one of
                                  :data:`TEST_PROTOCOLS`), or null
``Results[].Source``              where the number is printed
``Results[].Status``              ``official README``, ``third-party`` or
                                  ``paper only, not retrieved: <why>``
``Results[].Pipeline Test``       optional: ``tests/...py::test_name``, the
                                  test that proves the whole pipeline of the
                                  number (converter, config, test pipeline,
                                  model, post-processing, evaluator) equal
                                  to the official code's
``Weights``                       dense (COCO/ADE20K) checkpoint URL or null
``Weights Format``                ``mmdet2``, ``mmseg0``, ``detectron2`` or
                                  null; the converter is
                                  ``tools/model_converters/<format>_to_*.py``
                                  (:data:`mmmetaformer.convert.
                                  CONVERTER_SCRIPTS`)
``Weights Download``              ``direct`` (the tool can download it),
                                  ``manual`` (Google Drive / Baidu pages) or
                                  ``none``
``Converter``                     optional; if given, the script of the
                                  ``Weights Format``
``Weights Mirror``, ``Log``,      free text / URLs
``Notes``
================================  ============================================

A *row* is one ``Models`` entry, named by its ``Name`` (unique over all
metafiles); ``tools/reproduce.py ROW`` evaluates it.
"""
import glob
import os.path as osp
import posixpath
import sys
from typing import Dict, List, Optional

import yaml

from mmmetaformer.converters.scripts import CONVERTER_SCRIPTS

#: The repository (configs, metafiles and docs live next to the package).
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
METAFILE_DIR = osp.join(REPO_ROOT, 'configs', 'metafiles')
#: The page that holds the generated tables.
ZOO_PAGE = osp.join(REPO_ROOT, 'docs', 'model_zoo.md')
START_MARKER = '<!-- model-zoo:start -->'
END_MARKER = '<!-- model-zoo:end -->'

#: Evaluation protocols a published number can have. The first part names
#: the data set's single-scale test resize; ``-msflip`` adds multi-scale +
#: flip test-time augmentation (mmseg 0.x ``MultiScaleFlipAug`` ratios).
TEST_PROTOCOLS = {
    'coco-1333x800': 'keep-ratio resize to (1333, 800), pad to a multiple '
                     'of 32, single scale, no flip',
    'ade-align-2048x512': 'keep-ratio resize to (2048, 512), then resize to '
                          'a multiple of 32 (official PoolFormer '
                          'AlignResize), single scale',
    'ade-resize-2048x512': 'keep-ratio resize to (2048, 512) only (mmseg '
                           'default), single scale',
    'ade-resize-2048x512-msflip': 'keep-ratio resize to (2048, 512) x '
                                  '{0.5, 0.75, 1.0, 1.25, 1.5, 1.75}, each '
                                  'with and without horizontal flip, '
                                  'softmax averaged',
    'ade-align-2048x512-msflip': 'as ade-resize-2048x512-msflip, each scale '
                                 'then resized to a multiple of 32',
}
WEIGHT_FORMATS = tuple(CONVERTER_SCRIPTS)
DOWNLOAD_KINDS = ('direct', 'manual', 'none')
STATUS_VALUES = ('official README', 'third-party')
STATUS_NOT_RETRIEVED = 'paper only, not retrieved'
#: Order of the families on the page (others follow alphabetically).
FAMILY_ORDER = ('poolformer', 'rest', 'restv2', 'cyclemlp',
                'metaformer_baselines')

_MODEL_KEYS = {
    'Name', 'In Collection', 'Config', 'Metadata', 'Results', 'Weights',
    'Weights Format', 'Weights Download', 'Weights Mirror', 'Log',
    'Converter', 'Notes'
}
_RESULT_KEYS = {
    'Task', 'Dataset', 'Metrics', 'Test Protocol', 'Source', 'Status'
}
_OPTIONAL_RESULT_KEYS = {'Pipeline Test'}


class ZooError(ValueError):
    """A metafile breaks the format described in the module docstring."""


def _check(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ZooError(f'{where}: {message}')


def _validate_result(result: dict, where: str) -> None:
    _check(isinstance(result, dict), where, 'a result must be a mapping')
    unknown = set(result) - _RESULT_KEYS - _OPTIONAL_RESULT_KEYS
    missing = _RESULT_KEYS - set(result)
    _check(not unknown and not missing, where,
           f'result keys must be {sorted(_RESULT_KEYS)} (optional: '
           f'{sorted(_OPTIONAL_RESULT_KEYS)}); missing '
           f'{sorted(missing)}, unknown {sorted(unknown)}')
    if 'Pipeline Test' in result:
        _check_pipeline_test(result['Pipeline Test'], where)
    status = result['Status']
    _check(
        isinstance(status, str) and
        (status in STATUS_VALUES or status.startswith(STATUS_NOT_RETRIEVED)),
        where, f'Status must be one of {list(STATUS_VALUES)} or start with '
        f'{STATUS_NOT_RETRIEVED!r}, got {status!r}')
    metrics = result['Metrics']
    _check(isinstance(metrics, dict) and metrics, where,
           'Metrics must be a non-empty mapping')
    for name, value in metrics.items():
        if value is None:
            _check(status.startswith(STATUS_NOT_RETRIEVED), where,
                   f'metric {name!r} is null but Status is {status!r}: a '
                   'null value needs a "paper only, not retrieved: <why>" '
                   'status')
        else:
            _check(
                isinstance(value, (int, float)) and not isinstance(
                    value, bool) and 0 <= value <= 100, where,
                f'metric {name!r} must be a number in [0, 100] or null, got '
                f'{value!r}')
    protocol = result['Test Protocol']
    _check(protocol is None or protocol in TEST_PROTOCOLS, where,
           f'Test Protocol must be null or one of {sorted(TEST_PROTOCOLS)}, '
           f'got {protocol!r}')
    _check(isinstance(result['Source'], str) and result['Source'], where,
           'Source must name where the number is printed')


def _check_pipeline_test(test: str, where: str) -> None:
    """``test`` is ``tests/<file>.py::test_<name>`` and that function is
    defined in that file."""
    path, _, name = str(test).partition('::')
    _check(path.startswith('tests/') and path.endswith('.py') and
           name.startswith('test_'), where,
           f'Pipeline Test must be tests/<file>.py::test_<name>, got '
           f'{test!r}')
    full = osp.join(REPO_ROOT, path)
    _check(osp.isfile(full), where, f'Pipeline Test file {path} not found')
    with open(full) as f:
        _check(f'def {name}(' in f.read(), where,
               f'Pipeline Test {name} is not defined in {path}')


def _validate_model(model: dict, collections: set, where: str) -> None:
    _check(isinstance(model, dict), where, 'a model must be a mapping')
    unknown = set(model) - _MODEL_KEYS
    _check(not unknown, where, f'unknown keys {sorted(unknown)}; valid keys '
           f'are {sorted(_MODEL_KEYS)}')
    for key in ('Name', 'In Collection', 'Config', 'Metadata', 'Results',
                'Weights', 'Weights Format', 'Weights Download'):
        _check(key in model, where, f'missing key {key!r}')
    where = f'{where} ({model["Name"]})'
    _check(model['In Collection'] in collections, where,
           f'In Collection {model["In Collection"]!r} is not one of '
           f'{sorted(collections)}')
    config = model['Config']
    _check(config is None or (isinstance(config, str)
                              and config.startswith('configs/')
                              and config.endswith('.py')), where,
           f'Config must be null or configs/<name>.py, got {config!r}')
    _check('ImageNet Weights' in model['Metadata'], where,
           'Metadata must have ImageNet Weights (null if none is public)')
    _check(model['Weights Format'] in (None, ) + WEIGHT_FORMATS, where,
           f'Weights Format must be null or one of {list(WEIGHT_FORMATS)}, '
           f'got {model["Weights Format"]!r}')
    _check(model['Weights Download'] in DOWNLOAD_KINDS, where,
           f'Weights Download must be one of {list(DOWNLOAD_KINDS)}, got '
           f'{model["Weights Download"]!r}')
    converter = model.get('Converter')
    expected = CONVERTER_SCRIPTS.get(model['Weights Format'])
    _check(converter is None or converter == expected, where,
           f'Converter must be {expected!r} for Weights Format '
           f'{model["Weights Format"]!r} (or left out), got {converter!r}')
    if model['Weights Download'] == 'direct':
        _check(
            isinstance(model['Weights'], str)
            and model['Weights'].startswith('https://'), where,
            'Weights Download is direct but Weights is not an https URL')
    _check(
        isinstance(model['Results'], list) and model['Results'], where,
        'Results must be a non-empty list')
    for i, result in enumerate(model['Results']):
        _validate_result(result, f'{where} Results[{i}]')


def load_metafile(path: str) -> dict:
    """Read and validate one metafile.

    Returns:
        dict: ``{'Collections': [...], 'Models': [...]}``.
    """
    with open(path) as f:
        data = yaml.safe_load(f)
    where = osp.relpath(path, REPO_ROOT)
    _check(isinstance(data, dict) and set(data) <= {'Collections', 'Models'},
           where, 'top level must be a mapping with Collections and Models')
    collections = data.get('Collections') or []
    _check(collections, where, 'at least one Collection is required')
    names = set()
    for collection in collections:
        for key in ('Name', 'Paper', 'Code'):
            _check(key in collection, where,
                   f'collection {collection.get("Name")!r} lacks {key!r}')
        names.add(collection['Name'])
    models = data.get('Models') or []
    for i, model in enumerate(models):
        _validate_model(model, names, f'{where} Models[{i}]')
    return {'Collections': collections, 'Models': models}


def load_zoo(metafile_dir: str = METAFILE_DIR) -> Dict[str, dict]:
    """All metafiles, validated.

    Args:
        metafile_dir (str): Directory of ``*.yml`` metafiles.

    Returns:
        dict: File stem (family) -> ``{'Collections', 'Models'}``, in
        :data:`FAMILY_ORDER`, then by file name.
    """
    def order(path):
        stem = osp.splitext(osp.basename(path))[0]
        rank = FAMILY_ORDER.index(stem) if stem in FAMILY_ORDER else len(
            FAMILY_ORDER)
        return rank, stem

    paths = sorted(glob.glob(osp.join(metafile_dir, '*.yml')), key=order)
    if not paths:
        raise ZooError(f'no metafile in {metafile_dir}')
    zoo = {}
    seen = {}
    for path in paths:
        data = load_metafile(path)
        for model in data['Models']:
            name = model['Name']
            if name in seen:
                raise ZooError(f'row {name!r} is defined in both {seen[name]} '
                               f'and {osp.basename(path)}')
            seen[name] = osp.basename(path)
        zoo[osp.splitext(osp.basename(path))[0]] = data
    return zoo


def rows(zoo: Optional[Dict[str, dict]] = None) -> Dict[str, dict]:
    """Row name -> model entry, over all metafiles."""
    zoo = load_zoo() if zoo is None else zoo
    return {m['Name']: m for data in zoo.values() for m in data['Models']}


def find_row(name: str, zoo: Optional[Dict[str, dict]] = None) -> dict:
    """The zoo row called ``name``.

    Raises:
        ValueError: If there is no such row; the message lists the valid
            names.
    """
    table = rows(zoo)
    if name not in table:
        raise ValueError(f'Unknown model zoo row {name!r}; valid rows are: '
                         f'{", ".join(sorted(table))}')
    return table[name]


# ---------------------------------------------------------------- rendering
def _fmt_value(value) -> str:
    # str() keeps the published precision (42.0 stays 42.0, 36.68 36.68).
    return 'n/r' if value is None else str(value)


def _link(text: str, url: Optional[str]) -> str:
    return f'[{text}]({url})' if url else '-'


def _weights_cell(model: dict) -> str:
    url = model['Weights']
    if not url:
        return 'none released'
    kind = {'direct': 'download', 'manual': 'manual download'}
    text = kind.get(model['Weights Download'], 'link')
    return f'{_link(text, url)} ({model["Weights Format"]})'


def _status_cell(status: str) -> str:
    if status.startswith(STATUS_NOT_RETRIEVED):
        return STATUS_NOT_RETRIEVED
    return status


def _pipeline_cell(result: dict, page_dir: str) -> str:
    test = result.get('Pipeline Test')
    if not test:
        return 'not compared'
    path, _, name = test.partition('::')
    return f'proven: {_repo_link(name, path, page_dir)}'


_INTRO = (
    'Published numbers as printed by their source (**none of them has been '
    'reproduced by this package**). `n/r` = the number exists only in a '
    'paper that was not retrieved. *Whole pipeline = official*: the named '
    'test proves, on stored references of the official code (official-format '
    'checkpoint filled by a rule, real photographs), that converter, config, '
    'test pipeline, model, post-processing and evaluator give the official '
    'predictions and scores; the released weights and the data sets '
    'themselves are not available here. Evaluate a row with '
    '`python tools/reproduce.py ROW --checkpoint FILE`; the dense checkpoints '
    'of the original frameworks are converted on the fly '
    '(`tools/model_converters/`).')


def _repo_link(text: str, path: str, page_dir: str) -> str:
    """A Markdown link to the repository file ``path`` from a page in
    ``page_dir`` (both relative to the repository root)."""
    return f'[{text}]({posixpath.relpath(path, page_dir or ".")})'


def _row_line(model: dict, result: dict, metric_names: tuple,
              page_dir: str) -> str:
    """One table row: a published ``result`` of ``model``."""
    values = ' | '.join(
        _fmt_value(result['Metrics'][m]) for m in metric_names)
    config = model['Config']
    config_cell = (_repo_link(osp.basename(config), config, page_dir)
                   if config else '-')
    protocol = result['Test Protocol']
    imagenet = model['Metadata']['ImageNet Weights']
    return (f'| `{model["Name"]}` | '
            f'{model["Metadata"].get("Backbone", "-")} | {values} | '
            f'{f"`{protocol}`" if protocol else "-"} | '
            f'{_pipeline_cell(result, page_dir)} | '
            f'{_status_cell(result["Status"])} ({result["Source"]}) | '
            f'{config_cell} | {_weights_cell(model)} | '
            f'{_link("ImageNet", imagenet)} |')


def _task_key(result: dict) -> tuple:
    return (result['Task'], result['Dataset'], tuple(result['Metrics']))


def _collection_lines(collection: dict, models: List[dict],
                      page_dir: str) -> List[str]:
    """The section of one collection: paper, code, notes, one table per
    (task, data set, metrics)."""
    paper, code = collection['Paper'], collection['Code']
    lines = [
        '', f'## {collection["Name"]}', '',
        f'{_link(paper["Title"], paper["URL"])}; code: '
        f'{_link(code["URL"], code["URL"])} @ `{code["Version"]}`.'
    ]
    if collection.get('Notes'):
        lines += ['', collection['Notes']]
    if not models:
        return lines + ['', 'No published dense-prediction rows.']
    tasks = []
    for result in (r for model in models for r in model['Results']):
        if _task_key(result) not in tasks:
            tasks.append(_task_key(result))
    for task, dataset, metric_names in tasks:
        lines += [
            '', f'**{task}, {dataset}**', '',
            '| row | backbone | ' + ' | '.join(metric_names) +
            ' | test protocol | whole pipeline = official | status (source) '
            '| config | dense weights | ImageNet weights |',
            '|---' * (len(metric_names) + 8) + '|'
        ]
        lines += [
            _row_line(model, result, metric_names, page_dir)
            for model in models for result in model['Results']
            if _task_key(result) == (task, dataset, metric_names)
        ]
    return lines


def render_tables(zoo: Dict[str, dict], page_dir: str = 'docs') -> str:
    """The Markdown between the markers of the model-zoo page.

    Args:
        zoo (dict): :func:`load_zoo`'s result.
        page_dir (str): Directory of the page, relative to the repository
            root: links to configs and tests are relative to it.
    """
    lines = [
        '<!-- Generated by tools/model_zoo.py from configs/metafiles/*.yml; '
        'do not edit by hand. -->', '', _INTRO, '', 'Test protocols:', ''
    ]
    lines += [f'* `{key}`: {text}.' for key, text in TEST_PROTOCOLS.items()]
    for data in zoo.values():
        for collection in data['Collections']:
            models = [m for m in data['Models']
                      if m['In Collection'] == collection['Name']]
            lines += _collection_lines(collection, models, page_dir)
    return '\n'.join(lines) + '\n'


def splice(page_text: str, tables: str, where: str = 'the page') -> str:
    """Replace what is between the markers of ``page_text`` by ``tables``.

    Raises:
        ZooError: If the markers are missing or out of order (the message
            names ``where``).
    """
    start = page_text.find(START_MARKER)
    end = page_text.find(END_MARKER)
    if start < 0 or end < 0 or end < start:
        raise ZooError(f'{where} must contain {START_MARKER!r} followed by '
                       f'{END_MARKER!r}')
    head = page_text[:start + len(START_MARKER)]
    return head + '\n' + tables + page_text[end:]


def list_rows(zoo: Dict[str, dict]) -> List[str]:
    """One line per row: name, then its published metrics and protocols."""
    lines = []
    for name, model in rows(zoo).items():
        metrics = '; '.join(
            ', '.join(f'{k} {_fmt_value(v)}'
                      for k, v in r['Metrics'].items()) +
            f' [{r["Test Protocol"]}]' for r in model['Results'])
        lines.append(f'{name}: {metrics}')
    return lines


def update_page(page: str = ZOO_PAGE, metafile_dir: str = METAFILE_DIR,
                check: bool = False) -> int:
    """Rewrite (or, with ``check``, compare) the model-zoo tables of
    ``page``; links in them are relative to the page's directory.

    Returns:
        int: 1 if ``check`` and the page is out of date, else 0.
    """
    zoo = load_zoo(metafile_dir)
    with open(page) as f:
        current = f.read()
    page_dir = osp.relpath(osp.dirname(osp.abspath(page)), REPO_ROOT)
    updated = splice(current, render_tables(zoo, page_dir.replace(
        osp.sep, '/')), where=page)
    if check:
        if updated != current:
            print(f'{page} is out of date: run python tools/model_zoo.py',
                  file=sys.stderr)
            return 1
        print(f'{page} model-zoo tables are up to date.')
        return 0
    if updated != current:
        with open(page, 'w') as f:
            f.write(updated)
        print(f'Updated the model-zoo tables in {page}.')
    else:
        print(f'{page} was already up to date.')
    return 0
