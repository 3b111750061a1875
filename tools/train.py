"""Train a detector (mmdet) or segmentor (mmseg) whose config uses an
mmmetaformer backbone.

Examples::

    python tools/train.py configs/retinanet_poolformer_s12.py
    python tools/train.py CONFIG --epochs 1          # a short check
    python tools/train.py CONFIG --work-dir work_dirs/run1 --resume
    python tools/train.py CONFIG --amp --compile     # mixed precision
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
unexpected (refused otherwise). ``--amp`` trains in mixed precision
(float16 on CUDA, bfloat16 on the CPU), ``--compile`` compiles the backbone
with ``torch.compile`` for changing input sizes
(:func:`mmmetaformer.compile.compile_backbone`). See
:mod:`mmmetaformer.runner`.
"""
import argparse
import sys

import torch

import mmmetaformer  # noqa: F401  (registers the backbones)
from mmmetaformer.compile import compile_backbone, compiled_graphs
from mmmetaformer.runner.args import (add_runner_arguments, load_tool_config,
                                      parse_runner_arguments)
from mmmetaformer.runner.build import UnconvertedCheckpointError, build_runner
from mmmetaformer.runner.data_checks import MissingDataError
from mmmetaformer.runner.pretrained import allow_partial_pretrained
from mmmetaformer.runner.resume import ResumeError, resolve_resume
from mmmetaformer.runner.run_length import rescale_run_length
from mmmetaformer.runner.saving import OutputDirError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a model with an mmmetaformer backbone')
    add_runner_arguments(
        parser, 'override config settings, key=value (e.g. '
        'train_dataloader.batch_size=2 model.backbone.arch=s24)')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision: float16 with loss scaling on CUDA '
        '(mmengine\'s AmpOptimWrapper), bfloat16 on the CPU '
        '(CPUAmpOptimWrapper)')
    parser.add_argument(
        '--compile',
        nargs='?',
        const='inductor',
        metavar='BACKEND',
        help='torch.compile the backbone with BACKEND (default inductor), '
        'height and width dynamic (one compile for changing input sizes); '
        'the rest of the model and the optimizer step stay eager')
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


#: ``--amp``: device -> the optimizer wrapper fields it sets.
AMP_WRAPPERS = {
    'cuda': dict(type='AmpOptimWrapper', dtype='float16',
                 loss_scale='dynamic'),
    'cpu': dict(type='mmmetaformer.CPUAmpOptimWrapper', dtype='bfloat16'),
}


def use_amp(cfg, cuda: bool) -> None:
    """Turn the config's ``OptimWrapper`` into a mixed-precision one:
    float16 autocast with dynamic loss scaling on CUDA (mmengine's
    ``AmpOptimWrapper``), bfloat16 autocast on the CPU
    (:class:`mmmetaformer.engine.CPUAmpOptimWrapper`). A config that
    already has a mixed-precision wrapper is left as it is; any other
    wrapper type is an error."""
    wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper_type in ('AmpOptimWrapper', AMP_WRAPPERS['cpu']['type']):
        print(f'The config already uses {wrapper_type}; --amp ignored.')
        return
    if wrapper_type != 'OptimWrapper':
        sys.exit(f'--amp replaces OptimWrapper, but the config uses '
                 f'{wrapper_type}.')
    fields = AMP_WRAPPERS['cuda' if cuda else 'cpu']
    cfg.optim_wrapper.update(fields)
    print(f'[mmmetaformer] --amp: optim_wrapper {fields["type"]}, '
          f'{fields["dtype"]} autocast')


def compile_model(runner, backend: str) -> None:
    """``torch.compile`` the backbone of the Runner's model for changing
    input sizes (:func:`mmmetaformer.compile.compile_backbone`: height and
    width marked dynamic where the padded batch enters, so a detector's
    varying input sizes compile once per shape class, not once per size;
    parameter names and checkpoints unchanged); neck, heads, losses, data
    preprocessing and the optimizer step stay eager. Not mmengine's
    ``compile`` option: that compiles the whole ``train_step`` with the
    optimizer step, without dynamic sizes, and dynamo failed inside AdamW's
    step on the ResT configs (per-parameter groups of ``paramwise_cfg``;
    torch 2.13: ``InternalTorchDynamoError`` ``'UserDefinedDictVariable'
    object has no attribute 'items'``)."""
    try:
        compile_backbone(runner.model, backend=backend)
    except AttributeError as error:
        sys.exit(f'--compile: {error}')
    print(f'[mmmetaformer] --compile: torch.compile(backend={backend!r}) '
          'of the backbone, height and width dynamic')


def build_cfg(args):
    """Load the config and apply the command-line options."""
    cfg = load_tool_config(args)

    if args.amp:
        use_amp(cfg, torch.cuda.is_available())

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
    if args.compile:
        compile_model(runner, args.compile)
    runner.train()
    if args.compile:
        print(f'[mmmetaformer] --compile: {compiled_graphs()} graphs '
              'compiled')


if __name__ == '__main__':
    main()
