"""The command line of the converters (``tools/model_converters/
<source>_to_<target>.py``): ``SRC CONFIG OUT [--family F]
[--allow-partial] [--cfg-options ...]``."""
import argparse
import os.path as osp
from typing import List, Optional

from .run import run_conversion
from .scripts import CONVERTER_SCRIPTS, SOURCE_DESCRIPTIONS


def command_line(source_format: str, argv: Optional[List[str]] = None) -> int:
    """The ``SRC CONFIG OUT [--family F] [--allow-partial]`` command line of
    the converter of ``source_format``; returns the exit code."""
    from mmmetaformer.runner.args import add_cfg_options_argument

    target = 'mmseg 1.x' if source_format == 'mmseg0' else 'mmdet 3.x'
    parser = argparse.ArgumentParser(
        prog=osp.basename(CONVERTER_SCRIPTS[source_format]),
        description=f'Convert {SOURCE_DESCRIPTIONS[source_format]} into a '
        f'{target} checkpoint for one of this package\'s configs. The '
        'backbone family is taken from the config.')
    parser.add_argument('src', help=f'{source_format} checkpoint (.pth)')
    parser.add_argument(
        'config', help='this package\'s config the weights are for')
    parser.add_argument('out', help='output checkpoint path')
    parser.add_argument(
        '--family',
        help='backbone family of the checkpoint (e.g. PoolFormer, ResT); '
        'checked against the config')
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='save even if keys of the model are missing or unexpected '
        '(experts; reported)')
    add_cfg_options_argument(parser)
    args = parser.parse_args(argv)
    try:
        report = run_conversion(args.src, args.config, args.out,
                                source_format, args.cfg_options, args.family,
                                args.allow_partial)
    except (ValueError, KeyError, FileNotFoundError, TypeError) as exc:
        parser.exit(2, f'{parser.prog}: error: {exc}\n')
    print(report.summary())
    print(f'Saved {args.out}')
    return 0
