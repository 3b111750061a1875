"""Evaluate a model-zoo row and print published vs measured numbers
(logic: :mod:`mmmetaformer.reproduce`).

Usage::

    python tools/reproduce.py --list
    python tools/reproduce.py semfpn_poolformer_s12_mmseg       # downloads
    python tools/reproduce.py retinanet_poolformer_s12 --checkpoint \\
        retinanet_poolformer_s12.pth                             # from Drive
    python tools/reproduce.py semfpn_poolformer_s12 --checkpoint X.pth \\
        --data-root /data/ADEChallengeData2016/ --protocol ade-align-2048x512
"""
import argparse
import sys

from mmengine.config import DictAction

from mmmetaformer import reproduce, zoo


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Evaluate a model-zoo row: published vs measured')
    parser.add_argument('row', nargs='?', help='row name (see --list)')
    parser.add_argument('--list', action='store_true',
                        help='list the rows and exit')
    parser.add_argument('--checkpoint',
                        help='dense checkpoint (path or URL) in the row\'s '
                        'original format or already converted')
    parser.add_argument('--protocol', nargs='+',
                        help='evaluate only these test protocols')
    parser.add_argument('--data-root',
                        help='root of the row\'s data set (sets '
                        'MMMETAFORMER_COCO_ROOT / MMMETAFORMER_ADE_ROOT)')
    parser.add_argument('--work-dir',
                        help='default: work_dirs/reproduce/ROW')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--allow-partial', action='store_true',
                        help='evaluate a checkpoint that does not fill the '
                        'model (missing/unexpected keys are reported; '
                        'experts only)')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    args = parser.parse_args(argv)
    if not args.list and not args.row:
        parser.error('a row name (or --list) is required')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        print('\n'.join(zoo.list_rows(zoo.load_zoo())))
        return 0
    try:
        lines = reproduce.reproduce(
            args.row, args.checkpoint, args.protocol, args.work_dir,
            args.data_root, args.cfg_options, args.launcher,
            args.allow_partial)
    except (reproduce.ReproduceError, ValueError, KeyError,
            FileNotFoundError) as exc:
        print(f'reproduce.py: {exc}', file=sys.stderr)
        return 2
    print()
    print(reproduce.format_table(lines))
    missing = [x for x in lines if x['measured'] is None]
    if missing:
        print(f'\n{len(missing)} published metrics were not returned by the '
              'test loop (e.g. no detection above the score threshold).')
    return 0


if __name__ == '__main__':
    sys.exit(main())
