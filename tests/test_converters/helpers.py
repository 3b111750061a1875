"""Helpers of the converter tests: the model of a package config built
independently of the converters, a conversion through the command line,
checkpoint files."""
import os.path as osp

import torch
from mmengine.config import Config

from mmmetaformer.converters.cli import command_line

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def build(config):
    """The model of a package config, built here with the downstream
    registry (independently of the converters' own helper)."""
    import mmmetaformer  # noqa: F401
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.backbone.init_cfg = None
    cfg.model.pop('pretrained', None)
    init_default_scope(cfg.default_scope)
    if cfg.default_scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    return MODELS.build(cfg.model)


def run(source_format, src_state, tmp_path, config, container='state_dict',
        meta=None, extra=()):
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / 'src.pth'
    ckpt = {container: src_state}
    if meta is not None:
        ckpt['meta'] = meta
    ckpt['optimizer'] = {'state': {}, 'param_groups': [{'lr': 1e-4}]}
    torch.save(ckpt, src)
    out = tmp_path / 'out' / 'converted.pth'
    assert command_line(
        source_format,
        [str(src), osp.join(REPO, config), str(out), *extra]) == 0
    converted = torch.load(out, map_location='cpu', weights_only=True)
    model = build(config)
    model.load_state_dict(converted['state_dict'], strict=True)
    return converted, model


def same(a, b):
    return a.shape == b.shape and torch.equal(a, b)


def save(state_dict, path, container='state_dict'):
    torch.save({container: state_dict}, path)
    return str(path)
