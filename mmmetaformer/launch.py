"""The public names of :mod:`mmmetaformer.runner`, re-exported from their
former home so that ``from mmmetaformer.launch import build_runner`` (and
every other public name this module had) keeps working.

The code lives in the :mod:`mmmetaformer.runner` package, one module per
concern (data checks, CPU set-up, checkpoint loaders, saving, resume, run
length, pretrained init_cfgs, arguments, building the Runner); new code
imports from there.
"""
from mmmetaformer.runner.args import (add_cfg_options_argument,
                                      add_runner_arguments, load_tool_config,
                                      parse_runner_arguments)
from mmmetaformer.runner.build import UnconvertedCheckpointError, build_runner
from mmmetaformer.runner.cpu_setup import (LAUNCHERS,
                                           adapt_cfg_for_cpu_distributed,
                                           available_cpus,
                                           configure_cpu_threads,
                                           init_cpu_distributed,
                                           prepare_runtime)
from mmmetaformer.runner.data_checks import (PATHS_CONFIG, MissingDataError,
                                             data_root_variables,
                                             missing_data_message,
                                             missing_data_paths)
from mmmetaformer.runner.loaders import (enable_safe_runner_checkpoints,
                                         restore_runner_checkpoint_loaders)
from mmmetaformer.runner.pretrained import (allow_partial_pretrained,
                                            drop_pretrained)
from mmmetaformer.runner.replay import apply_config_on_resume, replay_schedule
from mmmetaformer.runner.resume import (ResumeError, check_runner_checkpoint,
                                        find_resume_checkpoint,
                                        resolve_resume)
from mmmetaformer.runner.resume_config import (RESUME_APPLIED_SECTIONS,
                                               check_resume_config,
                                               checkpoint_config,
                                               config_differences,
                                               resume_changes)
from mmmetaformer.runner.run_length import rescale_run_length
from mmmetaformer.runner.saving import (ATOMIC_CHECKPOINT_HOOK,
                                        OPTIMIZER_STATE_SLOTS, OutputDirError,
                                        check_output_dirs, checkpoint_dir,
                                        estimate_checkpoint_bytes,
                                        use_atomic_checkpoints)

__all__ = [
    'ATOMIC_CHECKPOINT_HOOK', 'LAUNCHERS', 'OPTIMIZER_STATE_SLOTS',
    'PATHS_CONFIG', 'RESUME_APPLIED_SECTIONS', 'MissingDataError',
    'OutputDirError', 'ResumeError', 'UnconvertedCheckpointError',
    'adapt_cfg_for_cpu_distributed', 'add_cfg_options_argument',
    'add_runner_arguments', 'allow_partial_pretrained',
    'apply_config_on_resume', 'available_cpus', 'build_runner',
    'check_output_dirs', 'check_resume_config', 'check_runner_checkpoint',
    'checkpoint_config', 'checkpoint_dir', 'config_differences',
    'configure_cpu_threads', 'data_root_variables', 'drop_pretrained',
    'enable_safe_runner_checkpoints', 'estimate_checkpoint_bytes',
    'find_resume_checkpoint', 'init_cpu_distributed', 'load_tool_config',
    'missing_data_message', 'missing_data_paths', 'parse_runner_arguments',
    'prepare_runtime', 'replay_schedule', 'rescale_run_length',
    'resolve_resume', 'restore_runner_checkpoint_loaders', 'resume_changes',
    'use_atomic_checkpoints'
]
