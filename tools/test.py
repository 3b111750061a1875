"""Evaluate a trained detector (mmdet) or segmentor (mmseg) whose config
uses an mmmetaformer backbone.

Examples::

    python tools/test.py configs/retinanet_poolformer_s12.py epoch_12.pth
    python tools/test.py CONFIG CKPT --out results.pkl        # mmdet
    python tools/test.py CONFIG CKPT --out pred_dir/          # mmseg
    python tools/test.py configs/upernet_restv2_tiny.py CKPT --tta
    torchrun --nproc_per_node 2 tools/test.py CONFIG CKPT --launcher pytorch
    # or: bash tools/dist_test.sh CONFIG CKPT 2

The checkpoint is read with ``torch.load(weights_only=True)`` (plus the
plain types mmengine's Runner writes, see :mod:`mmmetaformer.checkpoint`).
Before anything is evaluated, the checkpoint must fit the config's model
(:func:`mmmetaformer.convert.check_checkpoint_fits`): missing or unexpected
keys, or an official dense checkpoint that was not converted, stop the
script with a message listing them (exit code 2; ``--allow-partial``
evaluates it anyway, for experts). As in ``tools/train.py``, missing data
stops the script with a message (exit code 2) before anything is built.

``--tta`` evaluates with the multi-scale + flip protocol that the config's
published numbers used (mmseg 0.x ``--aug-test``: keep-ratio resize to
(2048, 512) x {0.5, 0.75, 1.0, 1.25, 1.5, 1.75}, each with and without a
horizontal flip, softmax averaged; the ``*-msflip`` protocols of
:data:`mmmetaformer.zoo.TEST_PROTOCOLS`, built as ``tools/reproduce.py``
builds them). ``--tta PROTOCOL`` names one; a config without a published
one stops with the list. (mmseg 1.x's own ``tta_pipeline`` resizes by
factors of the original image size, another protocol, and is not used.)
"""
import argparse
import os.path as osp
import sys

import mmmetaformer  # noqa: F401  (registers the backbones)
from mmmetaformer.checkpoint import CheckpointError, download
from mmmetaformer.runner.load_from import check_checkpoint_fits
from mmmetaformer.runner.args import (add_runner_arguments, load_tool_config,
                                      parse_runner_arguments)
from mmmetaformer.runner.build import UnconvertedCheckpointError, build_runner
from mmmetaformer.runner.data_checks import MissingDataError
from mmmetaformer.reproduce import ReproduceError, apply_protocol, tta_protocol
from mmmetaformer.zoo import TEST_PROTOCOLS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test a model with an mmmetaformer backbone')
    add_runner_arguments(parser, 'override config settings, key=value')
    parser.add_argument('checkpoint', help='checkpoint file (path or URL)')
    parser.add_argument(
        '--out',
        help='save the predictions: a .pkl file (mmdet and others) or a '
        'directory of label maps (mmseg)')
    parser.add_argument(
        '--show-dir',
        help='save images with predictions drawn, in this directory '
        '(relative to the work dir\'s timestamp folder for mmdet)')
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='evaluate even if the checkpoint leaves model parameters '
        'missing or has unexpected keys (listed; experts only)')
    parser.add_argument(
        '--tta',
        nargs='?',
        const='published',
        metavar='PROTOCOL',
        help='multi-scale + flip test (mmseg 0.x --aug-test): the protocol '
        'of the config\'s published numbers, or the *-msflip PROTOCOL named')
    return parse_runner_arguments(parser, argv)


def _enable_visualization(cfg, show_dir: str) -> None:
    """Turn on the config's visualization hook and direct it to
    ``show_dir``."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        sys.exit('--show-dir needs default_hooks.visualization in the config '
                 '(mmdet\'s DetVisualizationHook or mmseg\'s '
                 'SegVisualizationHook).')
    hook['draw'] = True
    if cfg.get('default_scope') == 'mmdet':
        hook['test_out_dir'] = show_dir
    else:
        cfg.visualizer['save_dir'] = show_dir


def _add_output(cfg, out: str) -> None:
    """Save the predictions to ``out``."""
    if cfg.get('default_scope') == 'mmseg':
        evaluators = cfg.test_evaluator
        if not isinstance(evaluators, dict):
            sys.exit('--out for mmseg needs a single test_evaluator.')
        # IoUMetric / CityscapesMetric write their label maps there.
        evaluators['output_dir'] = out
        if evaluators.get('type') == 'CityscapesMetric':
            evaluators['keep_results'] = True
        return
    if not out.endswith(('.pkl', '.pickle')):
        sys.exit(f'--out must be a .pkl or .pickle file, got {out!r}.')
    dump_type = 'DumpDetResults' if cfg.get('default_scope') == 'mmdet' \
        else 'DumpResults'
    dump = dict(type=dump_type, out_file_path=out)
    if isinstance(cfg.test_evaluator, (list, tuple)):
        cfg.test_evaluator = list(cfg.test_evaluator) + [dump]
    else:
        cfg.test_evaluator = [cfg.test_evaluator, dump]


def build_cfg(args):
    """Load the config and apply the command-line options."""
    cfg = load_tool_config(args)
    if args.tta:
        try:
            protocol = tta_protocol(
                args.config, None if args.tta == 'published' else args.tta)
            apply_protocol(cfg, protocol)
        except ReproduceError as error:
            print(f'test.py: {error}', file=sys.stderr)
            sys.exit(2)
        print(f'[mmmetaformer] --tta: {protocol} '
              f'({TEST_PROTOCOLS[protocol]})')
    cfg.load_from = args.checkpoint
    if args.show_dir:
        _enable_visualization(cfg, args.show_dir)
    if args.out:
        _add_output(cfg, args.out)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    if '://' in args.checkpoint:
        # one verified download (mmmetaformer.checkpoint's URL-keyed cache)
        # for the fit check and the Runner
        try:
            args.checkpoint = download(args.checkpoint)
        except CheckpointError as error:
            print(f'test.py: {error}', file=sys.stderr)
            sys.exit(2)
    elif not osp.isfile(args.checkpoint):
        print(f'Checkpoint not found: {args.checkpoint}', file=sys.stderr)
        sys.exit(2)
    cfg = build_cfg(args)

    try:
        runner = build_runner(cfg, args.config, ['test_dataloader'],
                              args.launcher, 'python tools/test.py')
    except (MissingDataError, UnconvertedCheckpointError) as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    try:
        problems = check_checkpoint_fits(args.checkpoint, runner.model,
                                         args.config, args.allow_partial)
    except (CheckpointError, ValueError, TypeError) as error:
        print(f'test.py: {error}', file=sys.stderr)
        sys.exit(2)
    for problem in problems:
        print(f'[mmmetaformer] --allow-partial: {problem}', file=sys.stderr)
    runner.test()


if __name__ == '__main__':
    main()
