"""Evaluate a model-zoo row and print published vs measured numbers
(command line: ``tools/reproduce.py``).

Steps:

1. resolve ROW in ``configs/metafiles/*.yml`` (see :mod:`mmmetaformer.zoo`);
2. take ``--checkpoint`` (a path or URL), or download the row's dense
   checkpoint when it has a direct link (OpenMMLab), into the download cache
   of :func:`mmmetaformer.checkpoint.download` (keyed by the full URL, hash
   verified); Google Drive and Baidu links must be downloaded by hand (the
   tool prints them);
3. convert it with the converter of the row's ``Weights Format``
   (:func:`mmmetaformer.convert.run_conversion`) into
   ``WORK_DIR/converted/ROW.pth``; the converted weights are loaded with
   ``strict=True`` into the model of the row's config before anything runs
   (already converted checkpoints pass through the same check); a checkpoint
   that does not fit stops here, listing the keys (``--allow-partial``
   evaluates it anyway, for experts);
4. for each test protocol of the row's published numbers (or
   ``--protocol``), set the config's test pipeline to it (see
   ``TEST_PROTOCOLS`` in :mod:`mmmetaformer.zoo`; ``*-msflip`` wraps the
   segmentor in mmseg's ``SegTTAModel``) and run mmengine's test loop;
5. print one line per published number: published, measured, difference.

Data roots: the configs read them from environment variables
(``MMMETAFORMER_COCO_ROOT``, ``MMMETAFORMER_ADE_ROOT``; see
``configs/_base_/datasets/paths.py``); ``--data-root`` sets the one the
row's data set uses.
"""
import contextlib
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Tuple

from mmmetaformer import zoo as model_zoo
from mmmetaformer.checkpoint import download
from mmmetaformer.converters.run import run_conversion

#: Environment variable holding the root of a row's data set.
DATA_ROOT_VARIABLES = {
    'COCO': 'MMMETAFORMER_COCO_ROOT',
    'ADE20K': 'MMMETAFORMER_ADE_ROOT',
}
#: Published metric name -> (key in the metrics mmengine's test loop
#: returns, factor to the published scale).
METRIC_KEYS = {
    'box AP': ('coco/bbox_mAP', 100.0),
    'mask AP': ('coco/segm_mAP', 100.0),
    'mIoU': ('mIoU', 1.0),
}
#: mmseg 0.x ``MultiScaleFlipAug`` ratios of the ADE20K configs.
MS_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
ADE_SCALE = (2048, 512)
COCO_SCALE = (1333, 800)


class ReproduceError(RuntimeError):
    """A row cannot be evaluated (the message says why and what to do)."""


# ------------------------------------------------------------------ protocols
def _find(pipeline: List[dict], type_name: str) -> Optional[dict]:
    return next((t for t in pipeline if t.get('type') == type_name), None)


def _seg_pipeline(base: List[dict], protocol: str) -> Tuple[List[dict],
                                                             bool]:
    """The test pipeline of an mmseg ``ade-*`` protocol, and whether it is a
    test-time augmentation."""
    load_image = _find(base, 'LoadImageFromFile') or dict(
        type='LoadImageFromFile')
    load_ann = _find(base, 'LoadAnnotations') or dict(
        type='LoadAnnotations', reduce_zero_label=True)
    pack = _find(base, 'PackSegInputs') or dict(type='PackSegInputs')
    align = '-align-' in protocol
    multiple = [dict(type='ResizeToMultiple', size_divisor=32)]
    if not protocol.endswith('-msflip'):
        resize = [dict(type='Resize', scale=ADE_SCALE, keep_ratio=True)]
        return [load_image] + resize + (multiple if align else []) + [
            load_ann, pack
        ], False
    scales = [
        dict(type='Resize',
             scale=(int(ADE_SCALE[0] * r), int(ADE_SCALE[1] * r)),
             keep_ratio=True) for r in MS_RATIOS
    ]
    flips = [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')]
    transforms = [scales, flips] + ([multiple] if align else []) + [
        [load_ann], [pack]
    ]
    return [load_image, dict(type='TestTimeAug', transforms=transforms)], True


def apply_protocol(cfg, protocol: str) -> None:
    """Set ``cfg``'s test pipeline (and model, for TTA) to ``protocol``.

    Raises:
        ReproduceError: If the protocol does not fit the config's framework.
    """
    if protocol not in model_zoo.TEST_PROTOCOLS:
        raise ReproduceError(
            f'Unknown test protocol {protocol!r}; valid: '
            f'{sorted(model_zoo.TEST_PROTOCOLS)}')
    scope = cfg.get('default_scope')
    dataset = cfg.test_dataloader.dataset
    if protocol.startswith('coco-'):
        if scope != 'mmdet':
            raise ReproduceError(f'{protocol} needs an mmdet config.')
        resize = _find(dataset.pipeline, 'Resize')
        if resize is None:
            raise ReproduceError('the config\'s test pipeline has no Resize.')
        resize.update(scale=COCO_SCALE, keep_ratio=True)
        cfg.model.data_preprocessor['pad_size_divisor'] = 32
        return
    if scope != 'mmseg':
        raise ReproduceError(f'{protocol} needs an mmseg config.')
    pipeline, tta = _seg_pipeline(list(dataset.pipeline), protocol)
    dataset.pipeline = pipeline
    if tta:
        cfg.model = dict(type='SegTTAModel', module=cfg.model)


def tta_protocol(config: str, protocol: Optional[str] = None) -> str:
    """The multi-scale + flip protocol ``tools/test.py --tta`` runs for
    ``config``: ``protocol`` if given (an ``*-msflip`` protocol), else the
    one of the config's published numbers (model-zoo rows whose ``Config``
    is ``config``).

    Raises:
        ReproduceError: If ``protocol`` is not a multi-scale + flip protocol,
            or none (or more than one) is published for the config.
    """
    msflip = sorted(p for p in model_zoo.TEST_PROTOCOLS
                    if p.endswith('-msflip'))
    if protocol is not None:
        if protocol not in msflip:
            raise ReproduceError(
                f'--tta {protocol!r} is not a multi-scale + flip protocol; '
                f'valid: {msflip}')
        return protocol
    path = osp.relpath(osp.realpath(config),
                       osp.realpath(model_zoo.REPO_ROOT))
    published = sorted({
        result['Test Protocol'] for model in model_zoo.rows().values()
        if model['Config'] == path for result in model['Results']
        if (result['Test Protocol'] or '').endswith('-msflip')})
    if len(published) != 1:
        what = (f'several ({published})' if published else
                'no multi-scale + flip protocol')
        raise ReproduceError(
            f'--tta: the model-zoo rows of {config} publish {what}; name '
            f'one with --tta PROTOCOL (valid: {msflip}).')
    return published[0]


# ---------------------------------------------------------------- checkpoints
def resolve_checkpoint(model: dict, checkpoint: Optional[str]) -> str:
    """A local path to the row's dense checkpoint (downloads direct links).

    Raises:
        ReproduceError: If no checkpoint was given and none can be
            downloaded; the message gives the links.
    """
    source = checkpoint
    if source is None:
        if model['Weights Download'] != 'direct':
            where = model['Weights'] or 'no dense checkpoint was released'
            mirror = model.get('Weights Mirror')
            raise ReproduceError(
                f'Row {model["Name"]}: the checkpoint cannot be downloaded '
                f'automatically ({where}'
                + (f'; mirror: {mirror}' if mirror else '') +
                '). Download it and pass --checkpoint FILE.'
                + (f' Notes: {model["Notes"]}' if model.get('Notes') else ''))
        source = model['Weights']
    if '://' in source:
        return download(source)
    if not osp.isfile(source):
        raise ReproduceError(f'Checkpoint not found: {source}')
    return source


def convert_checkpoint(model: dict, checkpoint: str, config: str,
                       out: str, cfg_options: Optional[dict],
                       allow_partial: bool = False) -> str:
    """Convert (and strictly verify) ``checkpoint`` for ``config``.

    Raises:
        ReproduceError: If the row has no weights format.
        ValueError: If the checkpoint does not fit the config's model and
            ``allow_partial`` is False (the message lists the keys).
    """
    if not model['Weights Format']:
        raise ReproduceError(
            f'Row {model["Name"]} has no dense-checkpoint format to convert '
            'from (Weights Format is null).')
    report = run_conversion(checkpoint, config, out, model['Weights Format'],
                            cfg_options, allow_partial=allow_partial)
    print(report.summary())
    return out


# ----------------------------------------------------------------- evaluation
def evaluate(config: str, checkpoint: str, protocol: str, work_dir: str,
             cfg_options: Optional[dict] = None,
             launcher: str = 'none') -> Dict[str, float]:
    """Run mmengine's test loop for one protocol; return its metrics."""
    from mmengine.config import Config

    from mmmetaformer.runner.build import build_runner
    from mmmetaformer.runner.data_checks import MissingDataError
    from mmmetaformer.runner.pretrained import drop_pretrained

    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    drop_pretrained(cfg.model)  # the dense checkpoint replaces them
    apply_protocol(cfg, protocol)
    cfg.load_from = checkpoint
    cfg.work_dir = work_dir
    cfg.launcher = launcher
    cfg.experiment_name = f'reproduce_{protocol}_{os.getpid()}_{id(cfg)}'
    if isinstance(cfg.get('visualizer'), dict):
        cfg.visualizer['name'] = cfg.experiment_name
    try:
        runner = build_runner(cfg, config, ['test_dataloader'], launcher)
    except MissingDataError as error:
        raise ReproduceError(str(error)) from None
    return dict(runner.test())


def measured_value(metrics: Dict[str, float], name: str) -> Optional[float]:
    """A returned metric on the published scale (None if absent)."""
    key, factor = METRIC_KEYS[name]
    value = metrics.get(key)
    return None if value is None else float(value) * factor


def format_table(lines: List[dict]) -> str:
    """The published-vs-measured table."""
    header = (f'{"row":<32} {"protocol":<28} {"metric":<8} '
              f'{"published":>9} {"measured":>9} {"diff":>8}  source')
    out = [header, '-' * len(header)]
    for line in lines:
        pub, meas = line['published'], line['measured']
        diff = (f'{meas - pub:+8.2f}'
                if pub is not None and meas is not None else f'{"-":>8}')
        out.append(
            f'{line["row"]:<32} {line["protocol"]:<28} {line["metric"]:<8} '
            f'{"n/r" if pub is None else f"{pub:.2f}":>9} '
            f'{"-" if meas is None else f"{meas:.2f}":>9} {diff}  '
            f'{line["source"]}')
    return '\n'.join(out)


def reproduce(row: str, checkpoint: Optional[str] = None,
              protocols: Optional[List[str]] = None,
              work_dir: Optional[str] = None,
              data_root: Optional[str] = None,
              cfg_options: Optional[dict] = None,
              launcher: str = 'none',
              allow_partial: bool = False) -> List[dict]:
    """Evaluate ``row``; return one dict per published number.

    ``allow_partial`` evaluates a checkpoint that does not fill the row's
    model (reported) instead of stopping.

    Each dict has ``row``, ``protocol``, ``metric``, ``published``,
    ``measured`` (None if the test loop did not return it) and ``source``.
    """
    model = model_zoo.find_row(row)
    if model['Config'] is None:
        raise ReproduceError(
            f'Row {row} has no config in this package: {model.get("Notes")}')
    config = osp.join(model_zoo.REPO_ROOT, model['Config'])
    results = model['Results']
    protocols = _chosen_protocols(row, results, protocols)
    if data_root:
        with _data_root_set(results[0]['Dataset'], data_root):
            return reproduce(row, checkpoint, protocols, work_dir, None,
                             cfg_options, launcher, allow_partial)

    work_dir = work_dir or osp.join('work_dirs', 'reproduce', row)
    source = resolve_checkpoint(model, checkpoint)
    converted = convert_checkpoint(
        model, source, config, osp.join(work_dir, 'converted', f'{row}.pth'),
        cfg_options, allow_partial)

    lines = []
    for protocol in protocols:
        print(f'== {row}: evaluating with {protocol} '
              f'({model_zoo.TEST_PROTOCOLS[protocol]})')
        metrics = evaluate(config, converted, protocol,
                           osp.join(work_dir, protocol), cfg_options,
                           launcher)
        lines += _result_lines(row, protocol, results, metrics)
    return lines


def _chosen_protocols(row: str, results: List[dict],
                      protocols: Optional[List[str]]) -> List[str]:
    """``protocols`` checked against the row's published ones, or (none
    given) every published protocol of the row, in order."""
    available = [r['Test Protocol'] for r in results if r['Test Protocol']]
    if protocols:
        unknown = [p for p in protocols if p not in available]
        if unknown:
            raise ReproduceError(
                f'--protocol {unknown} is not a protocol of {row}; its '
                f'published numbers use {sorted(set(available))}.')
    else:
        protocols = list(dict.fromkeys(available))
    if not protocols:
        raise ReproduceError(f'Row {row} has no test protocol.')
    return protocols


@contextlib.contextmanager
def _data_root_set(dataset: str, data_root: str) -> Iterator[None]:
    """The data-root variable of ``dataset`` set to ``data_root`` while
    the block runs (the configs read their data root from it, see
    configs/_base_/datasets/paths.py), restored when done."""
    variable = DATA_ROOT_VARIABLES[dataset.split()[0]]
    previous = os.environ.get(variable)
    os.environ[variable] = osp.join(data_root, '')
    try:
        yield
    finally:
        if previous is None:
            del os.environ[variable]
        else:
            os.environ[variable] = previous


def _result_lines(row: str, protocol: str, results: List[dict],
                  metrics: Dict[str, float]) -> List[dict]:
    """One line per number published for ``protocol``, beside the measured
    one."""
    lines = []
    for result in results:
        if result['Test Protocol'] != protocol:
            continue
        for name, published in result['Metrics'].items():
            lines.append(dict(
                row=row, protocol=protocol, metric=name,
                published=published,
                measured=measured_value(metrics, name),
                source=result['Source']))
    return lines
