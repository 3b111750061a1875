"""Helpers to check configs quickly: tiny demo data and ONE training
iteration of a config with an mmengine Runner.

Family engineers: to check a new detection or segmentation config, write::

    from tests.test_configs.utils import make_tiny_demo_data, train_one_iter

    def test_retinanet_myfamily_one_iter(tmp_path):
        data_dir = make_tiny_demo_data(tmp_path / 'data')
        result = train_one_iter('configs/retinanet_myfamily_tiny.py',
                                data_dir, tmp_path / 'work')
        # train_one_iter has already asserted a finite loss and updated
        # parameters in every part of the model; inspect more if needed:
        assert result.loss > 0

What :func:`train_one_iter` changes in the config (see :func:`tiny_config`):
the ImageNet ``Pretrained`` init_cfg is dropped (no download; the backbone
keeps its random init), the datasets point at the tiny demo data (COCO
format for mmdet configs, ADE20K format for mmseg configs), every resize
``scale`` and crop size is shrunk, batch size 2 without workers, the param
schedulers are removed (mmdet's warm-up would start the lr at 0.001x), and
validation, testing, checkpointing and visualisation are switched off. The
model, optimizer and the pipeline's other transforms stay as configured.
"""
import math
import os
import os.path as osp
import uuid
from typing import Dict, NamedTuple, Sequence, Tuple, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmmetaformer.demo import CLASSES, generate_demo_data
from mmmetaformer.launch import drop_pretrained  # noqa: F401 (re-exported)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: Dataset wrappers whose ``dataset`` entry holds the real dataset.
_WRAPPER_KEYS = ('dataset', 'datasets')

#: A parameter whose largest change after one step is below this did not
#: learn: AdamW moves every parameter with a non-zero gradient by about
#: ``lr`` (1e-4 .. 2e-4 in the configs) on its first step, whereas weight
#: decay alone moves it by ``lr * wd * |p|`` (about 1e-8 * |p|).
MIN_CHANGE = 1e-6


class OneIterResult(NamedTuple):
    """The outcome of :func:`train_one_iter`.

    Attributes:
        loss (float): The total loss of the iteration.
        log_vars (dict): Every logged loss term (floats).
        max_change (dict): Top-level model part (``backbone``, ``neck``,
            ``bbox_head``, ...) -> largest absolute parameter change.
        cfg (Config): The config that was run.
    """
    loss: float
    log_vars: Dict[str, float]
    max_change: Dict[str, float]
    cfg: Config


def make_tiny_demo_data(root,
                        num_train: int = 4,
                        num_val: int = 2,
                        image_size: Tuple[int, int] = (64, 96)) -> str:
    """Generate a tiny copy of the demo data (COCO and ADE20K formats).

    Args:
        root (str | Path): Output directory.
        num_train (int): Training images per data set.
        num_val (int): Validation images per data set.
        image_size (tuple[int, int]): Range of image width and height.

    Returns:
        str: ``root``, holding ``coco/`` and ``ade/``.
    """
    generate_demo_data(str(root), num_train=num_train, num_val=num_val,
                       image_size=image_size, max_objects=3)
    return str(root)


def _datasets(node):
    """The innermost dataset configs under a dataloader's ``dataset``."""
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from _datasets(item)
        return
    inner = [node[k] for k in _WRAPPER_KEYS if k in node]
    if inner:
        for item in inner:
            yield from _datasets(item)
    else:
        yield node


def _shrink_pipeline(pipeline: Sequence[dict], scale: Tuple[int, int],
                     crop: Tuple[int, int]) -> None:
    for transform in pipeline:
        if 'scale' in transform:
            transform['scale'] = scale
        if 'crop_size' in transform:
            transform['crop_size'] = crop
        if 'transforms' in transform:  # RandomChoice / TestTimeAug
            for item in transform['transforms']:
                _shrink_pipeline(item if isinstance(item, list) else [item],
                                 scale, crop)


def tiny_config(config_path: str,
                data_dir: str,
                work_dir: str,
                scale: Tuple[int, int] = (96, 64),
                crop: Tuple[int, int] = (64, 64),
                batch_size: int = 2) -> Config:
    """Load a config and make it train one iteration on the tiny demo data.

    Args:
        config_path (str): Config file (absolute or relative to the repo).
        data_dir (str): Output of :func:`make_tiny_demo_data`.
        work_dir (str): Runner work dir.
        scale (tuple[int, int]): Replaces every ``scale`` in the train
            pipeline (width, height).
        crop (tuple[int, int]): Replaces every ``crop_size`` in the train
            pipeline and mmseg's ``data_preprocessor.size``.
        batch_size (int): Training batch size.

    Returns:
        Config: The modified config.
    """
    if not osp.isabs(config_path):
        config_path = osp.join(REPO_ROOT, config_path)
    cfg = Config.fromfile(config_path)
    scope = cfg.get('default_scope')
    if scope not in ('mmdet', 'mmseg'):
        raise ValueError(f'{config_path}: default_scope must be one of '
                         f"('mmdet', 'mmseg'), got {scope!r}")
    drop_pretrained(cfg.model)

    loader = cfg.train_dataloader
    for dataset in _datasets(loader.dataset):
        if scope == 'mmdet':
            dataset.update(
                data_root=osp.join(data_dir, 'coco', ''),
                ann_file='annotations/instances_train.json',
                data_prefix=dict(img='train/'),
                metainfo=dict(classes=CLASSES))
        else:
            dataset.update(
                data_root=osp.join(data_dir, 'ade', ''),
                data_prefix=dict(img_path='images/training',
                                 seg_map_path='annotations/training'))
        _shrink_pipeline(dataset.pipeline, scale, crop)
    loader.update(batch_size=batch_size, num_workers=0,
                  persistent_workers=False)
    preprocessor = cfg.model.get('data_preprocessor')
    if preprocessor is not None and preprocessor.get('size') is not None:
        preprocessor['size'] = crop

    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.param_scheduler = None
    cfg.default_hooks.checkpoint = None  # one of mmengine's defaults
    cfg.default_hooks.pop('visualization', None)  # mmdet's/mmseg's hook
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.custom_hooks = []
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
    cfg.launcher = 'none'
    # Unique names: mmengine keeps visualizers and message hubs by name.
    cfg.experiment_name = f'one_iter_{uuid.uuid4().hex[:12]}'
    if isinstance(cfg.get('visualizer'), (dict, ConfigDict)):
        cfg.visualizer.name = cfg.experiment_name
    return cfg


class _RecordStep(Hook):
    """Snapshots the parameters before the first iteration and records the
    loss and parameter changes after it."""
    priority = 'VERY_LOW'

    def __init__(self):
        self.before = None
        self.outputs = None
        self.max_change = None

    @staticmethod
    def _model(runner):
        model = runner.model
        return getattr(model, 'module', model)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.before is None:
            self.before = {
                name: p.detach().clone()
                for name, p in self._model(runner).named_parameters()
                if p.requires_grad
            }

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if self.outputs is not None:
            return
        self.outputs = {
            k: float(v) for k, v in (outputs or {}).items()
            if isinstance(v, (int, float, torch.Tensor))
        }
        change = {}
        for name, p in self._model(runner).named_parameters():
            if name in self.before:
                part = name.split('.')[0]
                delta = (p.detach() - self.before[name]).abs().max().item()
                change[part] = max(change.get(part, 0.0), delta)
        self.max_change = change


def train_one_iter(config_path: str,
                   data_dir: str,
                   work_dir: Union[str, os.PathLike],
                   still_parts: Sequence[str] = (),
                   **kwargs) -> OneIterResult:
    """Run ONE training iteration of a config with an mmengine Runner, on the
    tiny demo data, and check that it learned something.

    Asserts that the total loss is finite and that every top-level part of
    the model with trainable parameters (backbone, neck, heads) changed by
    more than :data:`MIN_CHANGE`.

    Args:
        config_path (str): Config file (absolute or relative to the repo).
        data_dir (str): Output of :func:`make_tiny_demo_data`.
        work_dir (str | PathLike): Runner work dir (e.g. a ``tmp_path``).
        still_parts (Sequence[str]): Parts that cannot change in the first
            step by the model's own initialisation, e.g. Deformable DETR's
            ``level_embed`` (mmcv's deformable attention starts with zero
            sampling-offset and attention-weight matrices, so the position
            embedding has no effect yet). They must then NOT change.
        **kwargs: ``scale``, ``crop``, ``batch_size`` of :func:`tiny_config`.

    Returns:
        OneIterResult: Loss, loss terms and parameter changes.
    """
    cfg = tiny_config(config_path, str(data_dir), str(work_dir), **kwargs)
    runner = Runner.from_cfg(cfg)
    record = _RecordStep()
    runner.register_hook(record)
    runner.train()

    assert record.outputs is not None, 'no training iteration ran'
    assert 'loss' in record.outputs, sorted(record.outputs)
    loss = record.outputs['loss']
    assert math.isfinite(loss), f'loss is {loss}: {record.outputs}'
    frozen = [part for part, delta in record.max_change.items()
              if not delta > MIN_CHANGE and part not in still_parts]
    assert not frozen, (f'parameters of {frozen} did not change in one '
                        f'step: {record.max_change}')
    moved = [p for p in still_parts if record.max_change[p] > MIN_CHANGE]
    assert not moved, f'{moved} changed: {record.max_change}'
    return OneIterResult(loss, record.outputs, record.max_change, cfg)
