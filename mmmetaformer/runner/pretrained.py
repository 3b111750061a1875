"""Model-config edits about the ``Pretrained`` init_cfgs: drop them
(:func:`drop_pretrained`, when a dense checkpoint replaces the ImageNet
weights) or let them load partially (:func:`allow_partial_pretrained`,
``tools/train.py --allow-partial``)."""
from typing import List


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


def allow_partial_pretrained(model_cfg) -> List[str]:
    """Set ``allow_partial=True`` on the ``Pretrained`` init_cfg of every
    backbone of this package in a model config, in place (``tools/train.py
    --allow-partial``: load a checkpoint that leaves many keys missing or
    unexpected, with a warning).

    Returns:
        list[str]: The changes, for printing.
    """
    from mmmetaformer.registry import MODELS
    changes = []
    if isinstance(model_cfg, (list, tuple)):
        for item in model_cfg:
            changes += allow_partial_pretrained(item)
        return changes
    if not isinstance(model_cfg, dict):
        return changes
    init_cfgs = model_cfg.get('init_cfg')
    init_cfgs = init_cfgs if isinstance(init_cfgs, list) else [init_cfgs]
    kind = model_cfg.get('type')
    # this package's backbones (not its heads) read allow_partial
    cls = MODELS.module_dict.get(kind.split('.')[-1]) \
        if isinstance(kind, str) else None
    ours = hasattr(cls, 'load_pretrained')
    for init_cfg in init_cfgs:
        if ours and isinstance(init_cfg, dict) and init_cfg.get(
                'type') == 'Pretrained':
            init_cfg['allow_partial'] = True
            changes.append(f'{model_cfg["type"]} init_cfg.allow_partial=True '
                           '(--allow-partial)')
    for value in model_cfg.values():
        changes += allow_partial_pretrained(value)
    return changes
