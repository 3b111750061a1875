"""Train a detector (mmdet) or segmentor (mmseg) whose config uses an
mmmetaformer backbone.

Examples::

    python tools/train.py configs/retinanet_poolformer_s12.py
    python tools/train.py CONFIG --epochs 1          # a short check
    python tools/train.py CONFIG --work-dir work_dirs/run1 --resume
    torchrun --nproc_per_node 2 tools/train.py CONFIG --launcher pytorch
    # or: bash tools/dist_train.sh CONFIG 2

The config's ``default_scope`` (``mmdet`` / ``mmseg``) selects the library.
Before the Runner is built, the data paths the config reads are checked; if
something is missing the script stops with a message naming it (exit code
2). On a torch without CUDA, distributed launchers run on ``gloo`` and
threads/workers are set for the CPU. Checkpoints are written atomically
(a kill during a save keeps the previous one); ``--resume`` continues from
the newest complete checkpoint and is an error (exit code 2) when there is
none; a resume with a changed schedule, run length or optimizer settings
applies the new ones (the schedule replayed to the resumed step), one with a
changed model or optimizer type stops naming the differences (exit code 2).
A work dir / checkpoint directory that cannot be written or lacks the space
of one checkpoint stops the run before training (exit code 2).
``--epochs N`` / ``--iters N`` change the length of the run together
with the schedule and the checkpoint/validation intervals. An official dense
checkpoint with old-format keys given as ``load_from`` is refused with the
converter to run (exit code 2). ``--allow-partial`` lets the backbone's
``Pretrained`` init_cfg load a checkpoint that leaves many keys missing or
unexpected (refused otherwise). See :mod:`mmmetaformer.launch`.
"""
import argparse
import sys

import torch

import mmmetaformer  # noqa: F401  (registers the backbones)
from mmmetaformer.launch import (MissingDataError, OutputDirError,
                                 ResumeError, UnconvertedCheckpointError,
                                 add_runner_arguments,
                                 allow_partial_pretrained, build_runner,
                                 load_tool_config, parse_runner_arguments,
                                 rescale_run_length, resolve_resume)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a model with an mmmetaformer backbone')
    add_runner_arguments(
        parser, 'override config settings, key=value (e.g. '
        'train_dataloader.batch_size=2 model.backbone.arch=s24)')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision (needs a CUDA device)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or, without a value, from '
        'the newest complete and loadable checkpoint in the work dir (files '
        'skipped are named); nothing to resume from is an error')
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        '--epochs',
        type=int,
        help='train for N epochs (epoch-based configs): the lr schedule, the '
        'checkpoint and the validation intervals are rescaled with it')
    length.add_argument(
        '--iters',
        type=int,
        help='train for N iterations (iteration-based configs), rescaling as '
        '--epochs does')
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='let the backbone\'s Pretrained init_cfg load a checkpoint '
        'that leaves many keys missing or unexpected (refused otherwise)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr linearly with the actual total batch size '
        '(the config\'s auto_scale_lr.base_batch_size is the reference)')
    return parse_runner_arguments(parser, argv)


def build_cfg(args):
    """Load the config and apply the command-line options."""
    cfg = load_tool_config(args)

    if args.amp:
        if not torch.cuda.is_available():
            sys.exit('--amp needs a CUDA device (mmengine\'s AmpOptimWrapper);'
                     ' this torch has none.')
        wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper_type == 'AmpOptimWrapper':
            print('The config already uses AmpOptimWrapper; --amp ignored.')
        elif wrapper_type != 'OptimWrapper':
            sys.exit(f'--amp replaces OptimWrapper, but the config uses '
                     f'{wrapper_type}.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.epochs is not None or args.iters is not None:
        try:
            changes = rescale_run_length(cfg, args.epochs, args.iters)
        except ValueError as error:
            sys.exit(str(error))
        for change in changes:
            print(f'[mmmetaformer] {change}')
    try:
        for line in resolve_resume(cfg, args.resume):
            print(f'[mmmetaformer] {line}')
    except ResumeError as error:
        print(error, file=sys.stderr)
        sys.exit(2)

    if args.allow_partial:
        for change in allow_partial_pretrained(cfg.model):
            print(f'[mmmetaformer] {change}')

    if args.auto_scale_lr:
        if not cfg.get('auto_scale_lr', {}).get('base_batch_size'):
            sys.exit('--auto-scale-lr needs auto_scale_lr.base_batch_size '
                     'in the config.')
        cfg.auto_scale_lr.enable = True
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)

    sections = ['train_dataloader']
    if cfg.get('val_cfg') and cfg.get('val_dataloader'):
        sections.append('val_dataloader')
    try:
        runner = build_runner(cfg, args.config, sections, args.launcher)
    except (MissingDataError, UnconvertedCheckpointError, ResumeError,
            OutputDirError) as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    runner.train()


if __name__ == '__main__':
    main()
