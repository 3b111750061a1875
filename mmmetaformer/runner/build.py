"""The Runner built as the tools build it (:func:`build_runner`): the
checks and set-up of the other :mod:`mmmetaformer.runner` modules applied in
order."""
from typing import List, Sequence, Tuple

from mmmetaformer.runner.cpu_setup import prepare_runtime
from mmmetaformer.runner.data_checks import (MissingDataError,
                                             missing_data_message,
                                             missing_data_paths)
from mmmetaformer.runner.loaders import enable_safe_runner_checkpoints
from mmmetaformer.runner.replay import apply_config_on_resume
from mmmetaformer.runner.resume_config import check_resume_config, get_path
from mmmetaformer.runner.saving import (check_output_dirs,
                                        estimate_checkpoint_bytes,
                                        use_atomic_checkpoints)


class UnconvertedCheckpointError(ValueError):
    """``load_from`` names an official dense checkpoint with old-format keys;
    the message names the converter to run."""


def build_runner(cfg, config_path: str, sections: Sequence[str],
                 launcher: str, command: str = 'python tools/train.py'):
    """Build the Runner of ``cfg`` as the tools do.

    In order: check the data of ``sections`` (:func:`missing_data_paths`),
    prepare the runtime (:func:`prepare_runtime`), check and adapt a
    training config (:func:`_before_training`: writable output directories,
    atomic checkpoints, a resume's config changes), let mmengine read Runner
    checkpoints with ``weights_only=True``
    (:func:`enable_safe_runner_checkpoints`), build the Runner
    (``runner_type`` honoured) and check a training one
    (:func:`_after_building`: the space of one checkpoint, a resume's new
    values applied, ``load_from``). What changed is printed. When a training
    run's ``load_from`` is set (and not resumed from), the file is checked
    with :func:`mmmetaformer.convert.check_load_from`: an official dense
    checkpoint with old-format keys would load non-strictly and leave the
    backbone random, so it is refused with the converter to run
    (``tools/test.py`` checks its checkpoint more strictly itself).

    Args:
        cfg (mmengine.Config): The loaded config (modified in place).
        config_path (str): The config file, for messages.
        sections (Sequence[str]): Dataloader keys whose data must exist;
            ``'train_dataloader'`` among them means a training run.
        launcher (str): The ``--launcher`` value.
        command (str): The command shown in the missing-data message.

    Returns:
        mmengine.runner.Runner: The Runner.

    Raises:
        MissingDataError: With :func:`missing_data_message` as its message,
            before anything is built.
        UnconvertedCheckpointError: ``load_from`` needs a converter first.
        OutputDirError: A directory cannot be written or lacks space.
        ResumeError: The resumed run changed what a resume cannot.
    """
    missing = missing_data_paths(cfg, sections)
    if missing:
        raise MissingDataError(
            missing_data_message(config_path, missing, command))
    training = 'train_dataloader' in sections
    changes = prepare_runtime(cfg, launcher)
    if training:
        more, apply_on_resume = _before_training(cfg)
        changes += more
    for change in changes:
        print(f'[mmmetaformer] {change}')
    enable_safe_runner_checkpoints()
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    if training:
        _after_building(runner, cfg, config_path, apply_on_resume)
    return runner


def _before_training(cfg) -> Tuple[List[str], bool]:
    """What :func:`build_runner` does to a training config before the
    Runner exists: the output directories must be writable
    (:func:`check_output_dirs`), checkpoints atomic
    (:func:`use_atomic_checkpoints`), a resumed config compared with its
    checkpoint's (:func:`check_resume_config`). Returns the log lines and
    whether the resume applies new values."""
    check_output_dirs(cfg)
    changes = use_atomic_checkpoints(cfg)
    lines, apply_on_resume = check_resume_config(cfg)
    return changes + lines, apply_on_resume


def _after_building(runner, cfg, config_path: str,
                    apply_on_resume: bool) -> None:
    """What :func:`build_runner` checks once a training Runner exists: the
    space of one checkpoint (:func:`estimate_checkpoint_bytes`), the new
    values of a changed resumed config (:func:`apply_config_on_resume`) and
    a ``load_from`` that needs a converter."""
    check_output_dirs(cfg, estimate_checkpoint_bytes(
        runner.model, get_path(cfg, 'optim_wrapper.optimizer.type')))
    if apply_on_resume:
        apply_config_on_resume(runner)
    if cfg.get('load_from') and not cfg.get('resume'):
        from mmmetaformer.runner.load_from import check_load_from
        try:
            check_load_from(cfg.load_from, runner.model, config_path)
        except ValueError as error:
            raise UnconvertedCheckpointError(str(error)) from None
