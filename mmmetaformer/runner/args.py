"""The command line shared by the Runner tools (:func:`add_runner_arguments`,
:func:`parse_runner_arguments`, :func:`add_cfg_options_argument`) and the
config it gives (:func:`load_tool_config`)."""
import os
import os.path as osp

from mmengine.config import Config, DictAction

from mmmetaformer.runner.cpu_setup import LAUNCHERS

def add_cfg_options_argument(
        parser, help: str = 'override config settings, key=value') -> None:
    """Add mmengine's ``--cfg-options key=value ...`` to a tool's parser."""
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help=help)


def add_runner_arguments(parser, cfg_options_help: str) -> None:
    """Add the arguments every Runner tool shares (``config``,
    ``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local-rank``) to
    an :class:`argparse.ArgumentParser`.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        cfg_options_help (str): Help text of ``--cfg-options``.
    """
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--work-dir',
        help='where to save logs (and checkpoints when training); default: '
        'the config\'s work_dir, else ./work_dirs/<config name>')
    add_cfg_options_argument(parser, cfg_options_help)
    parser.add_argument(
        '--launcher',
        choices=list(LAUNCHERS),
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (older: --local_rank).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_arguments(parser, argv=None):
    """Parse a tool's arguments (see :func:`add_runner_arguments`) and set
    ``LOCAL_RANK`` from ``--local-rank`` unless the launcher set it."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_tool_config(args) -> 'Config':
    """The config of a Runner tool with ``--cfg-options``, ``--launcher``
    and the work dir (``--work-dir``, else the config's, else
    ``./work_dirs/<config name>``) applied."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg
