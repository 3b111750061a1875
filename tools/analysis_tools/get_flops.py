"""Count a backbone's FLOPs (multiply-accumulates) and parameters.

Examples::

    python tools/analysis_tools/get_flops.py CAFormer --arch s18
    python tools/analysis_tools/get_flops.py CAFormer --arch s18 --shape 800 1333
    python tools/analysis_tools/get_flops.py --config configs/mask_rcnn_caformer_s18.py --shape 800 1333

The count is mmengine's ``FlopAnalyzer`` (fvcore's convention: one "flop" is
one multiply-accumulate) with this package's handle for
``scaled_dot_product_attention`` (:mod:`mmmetaformer.analysis`), which
mmengine does not count on its own: CAFormer's and ResT's attention would be
missing. Ops that are still not counted are listed (element-wise ops such as
``add`` and ``mul``; by convention not counted). Only the backbone is
counted, not a detector's neck or heads.
"""
import argparse
import sys

import torch
from mmengine.analysis import parameter_count
from mmengine.config import Config

import mmmetaformer  # noqa: F401  (registers the backbones)
from mmmetaformer.analysis import FLOP_HANDLES, flop_analyzer
from mmmetaformer.registry import MODELS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Count the FLOPs (MACs) and parameters of an '
        'mmmetaformer backbone')
    parser.add_argument(
        'backbone', nargs='?',
        help='registered backbone name, e.g. CAFormer (or give --config)')
    parser.add_argument('--arch', help='architecture, e.g. s18')
    parser.add_argument(
        '--config', help='an mmdet/mmseg/mmpretrain config: its '
        'model.backbone is counted')
    parser.add_argument(
        '--shape', type=int, nargs='+', default=[224, 224],
        help='input height and width (one number: square). Default: 224')
    args = parser.parse_args(argv)
    if (args.backbone is None) == (args.config is None):
        parser.error('give either a backbone name or --config')
    if args.config is not None and args.arch is not None:
        parser.error('--arch goes with a backbone name; a config names '
                     'its own arch')
    if len(args.shape) not in (1, 2) or min(args.shape) < 1:
        parser.error(f'--shape takes one or two positive sizes (H [W]), '
                     f'got {args.shape}')
    return args


def backbone_config(args) -> dict:
    if args.config is not None:
        model = Config.fromfile(args.config).get('model', {})
        backbone = model.get('backbone')
        if backbone is None:
            raise SystemExit(f'{args.config}: the config has no '
                             f'model.backbone')
        cfg = dict(backbone)
    else:
        cfg = dict(type=args.backbone)
        if args.arch is not None:
            cfg['arch'] = args.arch
    # Counting needs no weights: do not fetch a pretrained checkpoint.
    cfg.pop('init_cfg', None)
    name = cfg['type'].split('.')[-1]
    if MODELS.get(name) is None:
        raise SystemExit(
            f'Unknown backbone {cfg["type"]!r}; valid choices are '
            f'{sorted(MODELS.module_dict)}.')
    cfg['type'] = name
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = backbone_config(args)
    height, width = (args.shape * 2)[:2]
    model = MODELS.build(cfg).eval()
    inputs = (torch.zeros(1, 3, height, width), )
    analyzer = flop_analyzer(model, inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        total = analyzer.total()
        by_op = analyzer.by_operator()
        skipped = analyzer.unsupported_ops()
    params = parameter_count(model)['']
    described = ', '.join(f'{k}={v!r}' for k, v in cfg.items()
                          if k != 'type')
    print(f'{cfg["type"]}({described}) at input 1x3x{height}x{width}')
    print(f'MACs: {total / 1e9:.3f} G   (mmengine FlopAnalyzer; one flop = '
          f'one multiply-accumulate)')
    ours = {op.split('::')[-1] for op in FLOP_HANDLES}
    for op, count in by_op.most_common():
        note = '  (handle: mmmetaformer.analysis)' if op in ours else ''
        print(f'  {op:<32s} {count / 1e9:9.3f} G{note}')
    print(f'Params: {params / 1e6:.3f} M')
    if skipped:
        print('Not counted: ' + ', '.join(
            f'{op} x{n}' for op, n in sorted(skipped.items())))
    return 0


if __name__ == '__main__':
    sys.exit(main())
