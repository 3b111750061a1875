"""mmmetaformer.launch, the former home of mmmetaformer.runner, still gives
every public name it had (the list below is the one it defined before the
split), each the object the runner module defines."""
import importlib

import pytest

import mmmetaformer.launch

#: The public names mmmetaformer/launch.py defined before the split, by the
#: runner module that holds each now.
FORMER_NAMES = {
    'args': ['add_cfg_options_argument', 'add_runner_arguments',
             'parse_runner_arguments', 'load_tool_config'],
    'build': ['UnconvertedCheckpointError', 'build_runner'],
    'cpu_setup': ['LAUNCHERS', 'init_cpu_distributed',
                  'adapt_cfg_for_cpu_distributed', 'available_cpus',
                  'configure_cpu_threads', 'prepare_runtime'],
    'data_checks': ['PATHS_CONFIG', 'missing_data_paths',
                    'data_root_variables', 'missing_data_message',
                    'MissingDataError'],
    'loaders': ['enable_safe_runner_checkpoints',
                'restore_runner_checkpoint_loaders'],
    'pretrained': ['drop_pretrained', 'allow_partial_pretrained'],
    'replay': ['replay_schedule', 'apply_config_on_resume'],
    'resume': ['ResumeError', 'check_runner_checkpoint',
               'find_resume_checkpoint', 'resolve_resume'],
    'resume_config': ['RESUME_APPLIED_SECTIONS', 'config_differences',
                      'checkpoint_config', 'resume_changes',
                      'check_resume_config'],
    'run_length': ['rescale_run_length'],
    'saving': ['ATOMIC_CHECKPOINT_HOOK', 'use_atomic_checkpoints',
               'OutputDirError', 'OPTIMIZER_STATE_SLOTS',
               'estimate_checkpoint_bytes', 'check_output_dirs',
               'checkpoint_dir'],
}


@pytest.mark.parametrize('module', sorted(FORMER_NAMES))
def test_former_names_are_reexported(module):
    runner_module = importlib.import_module(f'mmmetaformer.runner.{module}')
    for name in FORMER_NAMES[module]:
        assert getattr(mmmetaformer.launch, name) is getattr(
            runner_module, name), name


def test_all_lists_exactly_the_former_names():
    former = {n for names in FORMER_NAMES.values() for n in names}
    assert len(former) == 40
    assert sorted(mmmetaformer.launch.__all__) == sorted(former)

