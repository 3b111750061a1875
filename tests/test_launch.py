"""Tests of mmmetaformer.launch: what the tools do around a Runner, each
exercised through the code path that needs it (mmengine's Runner, ...)."""
import os
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from mmmetaformer import launch
from mmmetaformer.checkpoint import CheckpointError
from tests.test_tools.toy_runner import build_toy_runner


def _runner(work_dir, max_iters, **kwargs):
    return build_toy_runner(
        work_dir, max_iters,
        dict(type='CheckpointHook', interval=2, by_epoch=False), **kwargs)


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    """A checkpoint written by Runner.train() after 2 iterations, and the
    model's state at that point."""
    work_dir = tmp_path_factory.mktemp('ckpt')
    runner = _runner(work_dir, max_iters=2)
    runner.train()
    state = {k: v.clone() for k, v in runner.model.state_dict().items()}
    return work_dir / 'iter_2.pth', state


def test_runner_checkpoint_needs_the_allowlist(runner_checkpoint):
    # Precondition of the fix: torch's default weights_only=True load
    # refuses the Runner's checkpoint. If this starts to pass, the fix is
    # no longer needed.
    path, _ = runner_checkpoint
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in unsafe


@pytest.fixture
def safe_loaders():
    """mmengine's checkpoint loaders replaced by
    launch.enable_safe_runner_checkpoints for the test, put back after."""
    launch.enable_safe_runner_checkpoints()
    yield
    launch.restore_runner_checkpoint_loaders()


def test_runner_resume(runner_checkpoint, tmp_path, safe_loaders):
    path, state = runner_checkpoint
    # resume=True with an explicit checkpoint: continue from iteration 2.
    runner = _runner(tmp_path, max_iters=3, resume=True, load_from=str(path))
    runner.train()
    assert runner.iter == 3
    # The message hub was restored: its loss history holds the 2 resumed
    # iterations and the new one.
    loss = runner.message_hub.get_scalar('train/loss')
    assert isinstance(loss, HistoryBuffer)
    assert len(loss.data[0]) == 3


def test_runner_load_from(runner_checkpoint, tmp_path, safe_loaders):
    path, state = runner_checkpoint
    runner = _runner(tmp_path, max_iters=2, load_from=str(path))
    runner.load_or_resume()
    loaded = runner.model.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    assert runner.iter == 0  # load_from loads weights, not the loop state


def test_runner_checkpoint_loader_refuses_other_getattr(tmp_path,
                                                        safe_loaders):
    # The pickled HistoryBuffer methods come through builtins.getattr; any
    # other getattr (here one reaching a function object, the first step
    # of a code-execution chain) must be refused.
    class Probe:

        def __reduce__(self):
            return getattr, (HistoryBuffer, '__init__')

    path = tmp_path / 'probe.pth'
    torch.save({'state_dict': {}, 'x': Probe()}, path)
    with pytest.raises(CheckpointError, match='Refused to read'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')


def test_safe_runner_checkpoints_opt_in_and_restore(runner_checkpoint):
    path, _ = runner_checkpoint
    before = dict(CheckpointLoader._schemes)
    # Without the opt-in, mmengine's own loader refuses the Runner's file
    # (torch's weights_only default): nothing was changed at import.
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    launch.enable_safe_runner_checkpoints()
    launch.enable_safe_runner_checkpoints()  # idempotent
    try:
        assert CheckpointLoader._get_checkpoint_loader(
            '/some/file.pth') is launch._load_runner_checkpoint
        assert CheckpointLoader._get_checkpoint_loader(
            'https://x/y.pth') is launch._load_runner_checkpoint_http
        ckpt = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
        assert ckpt['meta']['iter'] == 2
    finally:
        launch.restore_runner_checkpoint_loaders()
    assert CheckpointLoader._schemes == before


def test_launcher_env_slurm_and_mpi():
    env = launch._launcher_env(
        'slurm',
        dict(SLURM_PROCID='3', SLURM_NTASKS='4', SLURM_LOCALID='1',
             MASTER_ADDR='node7'))
    assert env == dict(RANK='3', WORLD_SIZE='4', LOCAL_RANK='1',
                       MASTER_PORT='29500')
    env = launch._launcher_env(
        'mpi',
        dict(OMPI_COMM_WORLD_RANK='1', OMPI_COMM_WORLD_SIZE='2',
             OMPI_COMM_WORLD_LOCAL_RANK='1', MASTER_ADDR='h',
             MASTER_PORT='1234'))
    assert env == dict(RANK='1', WORLD_SIZE='2', LOCAL_RANK='1')
    with pytest.raises(RuntimeError, match='MASTER_ADDR'):
        launch._launcher_env(
            'mpi',
            dict(OMPI_COMM_WORLD_RANK='0', OMPI_COMM_WORLD_SIZE='1',
                 OMPI_COMM_WORLD_LOCAL_RANK='0'))
    with pytest.raises(RuntimeError, match='torchrun'):
        launch._launcher_env('pytorch', dict(RANK='0'))
    with pytest.raises(ValueError, match='launcher'):
        launch.init_cpu_distributed('ray')


def test_adapt_cfg_for_cpu_distributed():
    cfg = Config(
        dict(
            model=dict(
                backbone=dict(norm_cfg=dict(type='SyncBN')),
                heads=[dict(norm_cfg=dict(type='MMSyncBN')),
                       dict(norm_cfg=dict(type='GN', num_groups=2))]),
            sync_bn='torch',
            env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    changes = launch.adapt_cfg_for_cpu_distributed(cfg)
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert cfg.model.heads[0].norm_cfg.type == 'BN'
    assert cfg.model.heads[1].norm_cfg.type == 'GN'
    assert 'sync_bn' not in cfg
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None
    assert '2 SyncBN norm config(s) -> BN' in changes

    cfg = Config(dict(model_wrapper_cfg=dict(type='MyWrapper')))
    launch.adapt_cfg_for_cpu_distributed(cfg)
    assert cfg.model_wrapper_cfg == dict(type='MyWrapper', device_ids=None)


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('cpus,local_procs,threads,workers', [
    (2, 1, 2, 0),    # 2 shared cores: data in the main process
    (2, 2, 1, 0),    # 2 processes on 2 cores: 1 thread each
    (16, 1, 12, 4),  # 16 cores: 4 workers, 12 threads
    (16, 2, 6, 2),
])
def test_configure_cpu_threads(monkeypatch, restore_threads, cpus,
                               local_procs, threads, workers):
    monkeypatch.setattr(launch.torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(launch, 'available_cpus', lambda: cpus)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', str(local_procs))
    cfg = Config(
        dict(
            train_dataloader=dict(num_workers=8, persistent_workers=True),
            val_dataloader=dict(num_workers=1, persistent_workers=True),
            test_dataloader=None))
    result = launch.configure_cpu_threads(cfg)
    assert result['num_threads'] == threads == torch.get_num_threads()
    assert cfg.train_dataloader.num_workers == workers
    assert cfg.train_dataloader.persistent_workers == (workers > 0)
    assert cfg.val_dataloader.num_workers == min(1, workers)


def test_configure_cpu_threads_explicit_and_errors(monkeypatch,
                                                   restore_threads):
    monkeypatch.setattr(launch.torch.cuda, 'is_available', lambda: False)
    cfg = Config(dict(train_dataloader=dict(num_workers=4)))
    result = launch.configure_cpu_threads(cfg, num_threads=1, max_workers=3)
    assert torch.get_num_threads() == 1 and result['max_workers'] == 3
    assert cfg.train_dataloader.num_workers == 3
    with pytest.raises(ValueError, match='num_threads'):
        launch.configure_cpu_threads(num_threads=0)
    with pytest.raises(ValueError, match='max_workers'):
        launch.configure_cpu_threads(max_workers=-1)
    monkeypatch.setattr(launch.torch.cuda, 'is_available', lambda: True)
    assert launch.configure_cpu_threads(cfg) == {}


# ----------------------------------------------------------------- resume


def _work_dir_with(tmp_path, runner_checkpoint, files):
    """A work dir holding a copy of the 2-iteration checkpoint as
    ``iter_2.pth`` plus ``files`` (name -> bytes, or None for another copy
    of the good checkpoint)."""
    good = runner_checkpoint[0].read_bytes()
    work_dir = tmp_path / 'wd'
    work_dir.mkdir()
    (work_dir / 'iter_2.pth').write_bytes(good)
    for name, data in files.items():
        (work_dir / name).write_bytes(good if data is None else data(good))
    return work_dir


def test_find_resume_checkpoint_skips_incomplete_files(
        tmp_path, runner_checkpoint):
    work_dir = _work_dir_with(
        tmp_path, runner_checkpoint, {
            'iter_4.pth': lambda good: good[:len(good) // 2],  # truncated
            'iter_6.pth': lambda good: b'',  # empty
            '.iter_8.pth.tmp': lambda good: good[:100],  # killed save
            'iter_3.pth': lambda good: torch_save_bytes({'a': 1}),
            'notes.txt': lambda good: b'x',  # not a checkpoint name
        })
    cfg = Config(dict(work_dir=str(work_dir)))
    path, skipped = launch.find_resume_checkpoint(cfg)
    assert path == str(work_dir / 'iter_2.pth')
    reasons = dict(skipped)
    assert set(reasons) == {
        str(work_dir / n)
        for n in ('iter_4.pth', 'iter_6.pth', '.iter_8.pth.tmp',
                  'iter_3.pth')
    }
    assert reasons[str(work_dir / 'iter_6.pth')] == 'empty file (0 bytes)'
    assert 'truncated' in reasons[str(work_dir / 'iter_4.pth')]
    assert 'interrupted' in reasons[str(work_dir / '.iter_8.pth.tmp')]
    assert 'not a training checkpoint' in reasons[str(work_dir /
                                                      'iter_3.pth')]


def torch_save_bytes(obj):
    import io
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_find_resume_checkpoint_newest_step_first(tmp_path,
                                                  runner_checkpoint):
    # iter_10 sorts before iter_9 as text; the step number decides.
    work_dir = _work_dir_with(tmp_path, runner_checkpoint, {
        'iter_9.pth': None,
        'iter_10.pth': None
    })
    cfg = Config(dict(work_dir=str(work_dir)))
    assert launch.find_resume_checkpoint(cfg) == (
        str(work_dir / 'iter_10.pth'), [])


def test_find_resume_checkpoint_custom_template_and_out_dir(
        tmp_path, runner_checkpoint):
    out_dir = tmp_path / 'ckpts'
    work_dir = out_dir / 'run1'  # mmengine: <out_dir>/<work dir name>
    work_dir.mkdir(parents=True)
    (work_dir / 'model_7.pth').write_bytes(runner_checkpoint[0].read_bytes())
    cfg = Config(
        dict(
            work_dir=str(tmp_path / 'elsewhere' / 'run1'),
            default_hooks=dict(
                checkpoint=dict(
                    type='CheckpointHook', out_dir=str(out_dir),
                    filename_tmpl='model_{}.pth'))))
    assert launch.find_resume_checkpoint(cfg)[0] == str(work_dir /
                                                       'model_7.pth')


def test_find_resume_checkpoint_nothing_is_an_error(tmp_path):
    (tmp_path / '.iter_2.pth.tmp').write_bytes(b'PK')
    cfg = Config(dict(work_dir=str(tmp_path)))
    with pytest.raises(launch.ResumeError) as error:
        launch.find_resume_checkpoint(cfg)
    message = str(error.value)
    assert f'no complete checkpoint to resume from in {tmp_path}' in message
    assert 'epoch_N.pth, iter_N.pth' in message
    assert f'skipped {tmp_path / ".iter_2.pth.tmp"}' in message
    cfg = Config(dict(work_dir=str(tmp_path / 'missing')))
    with pytest.raises(launch.ResumeError, match='does not exist'):
        launch.find_resume_checkpoint(cfg)


def test_resolve_resume(tmp_path, runner_checkpoint):
    cfg = Config(dict(work_dir=str(tmp_path), resume=False, load_from=None))
    assert launch.resolve_resume(cfg, None) == []
    assert cfg.resume is False and cfg.load_from is None
    path = str(runner_checkpoint[0])
    lines = launch.resolve_resume(cfg, path)
    assert cfg.resume is True and cfg.load_from == path
    assert lines == [f'--resume: resuming from {path}']
    # An explicitly named file that cannot be resumed is an error, not a
    # silent fallback to another file.
    empty = tmp_path / 'epoch_3.pth'
    empty.write_bytes(b'')
    with pytest.raises(launch.ResumeError, match='epoch_3.pth: empty file'):
        launch.resolve_resume(cfg, str(empty))


# ------------------------------------------------------ atomic checkpoints


@pytest.mark.parametrize('hooks,expected', [
    (dict(checkpoint=dict(type='CheckpointHook', interval=2)),
     dict(type='mmmetaformer.AtomicCheckpointHook', interval=2)),
    (dict(logger=dict(type='LoggerHook')),
     dict(type='mmmetaformer.AtomicCheckpointHook', interval=1)),
    (dict(checkpoint=None), None),
    (dict(checkpoint=dict(type='MyHook')), dict(type='MyHook')),
])
def test_use_atomic_checkpoints(hooks, expected):
    cfg = Config(dict(default_hooks=hooks))
    changes = launch.use_atomic_checkpoints(cfg)
    assert cfg.default_hooks.checkpoint == expected
    assert bool(changes) == (expected is not None
                             and expected['type'] != 'MyHook')


# ------------------------------------------------------------- run length

DEMO_CONFIG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs',
    'demo', 'retinanet_poolformer_s12_demo.py')


def test_rescale_run_length_demo_config():
    cfg = Config.fromfile(DEMO_CONFIG)
    assert cfg.train_cfg.max_epochs == 24  # what the figures below assume
    changes = launch.rescale_run_length(cfg, epochs=2)
    assert cfg.train_cfg.max_epochs == 2
    assert cfg.train_cfg.val_interval == 2
    assert cfg.default_hooks.checkpoint.interval == 1  # 4 of 24 epochs
    warmup, cosine = cfg.param_scheduler
    assert (cosine.begin, cosine.end) == (0, 2)
    assert (warmup.begin, warmup.end) == (0, 100)  # iterations: kept
    assert changes == [
        '--epochs 2: train_cfg.max_epochs 24 -> 2',
        '--epochs 2: train_cfg.val_interval 24 -> 2',
        '--epochs 2: param_scheduler[0] (LinearLR) kept: counted in '
        'iterations (begin=0, end=100)',
        '--epochs 2: param_scheduler[1].end (CosineAnnealingLR) 24 -> 2',
        '--epochs 2: default_hooks.checkpoint.interval 4 -> 1',
    ]


def test_rescale_run_length_step_schedule():
    # mmdet's 1x schedule: 12 epochs, steps at 8 and 11.
    cfg = Config(
        dict(
            train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=12,
                           val_interval=1),
            param_scheduler=[
                dict(type='LinearLR', by_epoch=False, begin=0, end=500),
                dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
                     milestones=[8, 11])
            ],
            default_hooks=dict(checkpoint=dict(interval=4, save_begin=6))))
    launch.rescale_run_length(cfg, epochs=24)
    assert cfg.train_cfg == dict(type='EpochBasedTrainLoop', max_epochs=24,
                                 val_interval=2)
    assert cfg.param_scheduler[1].milestones == [16, 22]
    assert cfg.param_scheduler[1].end == 24
    assert cfg.param_scheduler[0].end == 500
    assert cfg.default_hooks.checkpoint == dict(interval=8, save_begin=12)
    # Shorter: positions are rounded and stay >= 1.
    launch.rescale_run_length(cfg, epochs=3)
    assert cfg.param_scheduler[1].milestones == [2, 3]
    assert cfg.train_cfg.val_interval == 1


def test_rescale_run_length_iteration_config():
    # mmseg's 160k schedule.
    cfg = Config(
        dict(
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=160000,
                           val_interval=16000),
            param_scheduler=[
                dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0,
                     end=160000, by_epoch=False)
            ],
            default_hooks=dict(
                checkpoint=dict(by_epoch=False, interval=16000))))
    changes = launch.rescale_run_length(cfg, iters=1000)
    assert cfg.train_cfg.max_iters == 1000
    assert cfg.train_cfg.val_interval == 100
    assert cfg.param_scheduler[0].end == 1000
    assert cfg.default_hooks.checkpoint.interval == 100
    assert len(changes) == 4


def test_rescale_run_length_errors():
    cfg = Config(dict(train_cfg=dict(max_iters=100)))
    with pytest.raises(ValueError, match='use --iters N'):
        launch.rescale_run_length(cfg, epochs=2)
    with pytest.raises(ValueError, match='--iters must be an integer >= 1'):
        launch.rescale_run_length(cfg, iters=0)
    with pytest.raises(ValueError, match='exactly one'):
        launch.rescale_run_length(cfg, epochs=1, iters=1)
    with pytest.raises(ValueError, match='neither'):
        launch.rescale_run_length(Config(dict(train_cfg=dict())), epochs=1)


# ------------------------------------------------ resume after a change


def test_config_differences():
    old = dict(backbone=dict(arch='s12', init_cfg=dict(checkpoint='a.pth'),
                             out_indices=(0, 1)), neck=dict(c=64))
    new = dict(backbone=dict(arch='s24', init_cfg=None, out_indices=[0, 1],
                             drop_path_rate=0.1), neck=dict(c=64))
    assert launch.config_differences(old, new, 'model', ('init_cfg', )) == [
        ('model.backbone.arch', 's12', 's24'),
        ('model.backbone.drop_path_rate', '<not set>', 0.1),
    ]  # a tuple and a list with the same items are the same
    assert launch.config_differences([dict(end=2)], [dict(end=3)],
                                     'param_scheduler') == [
        ('param_scheduler[0].end', 2, 3)]
    assert launch.config_differences([1], [1, 2], 'x') == [('x', [1],
                                                            [1, 2])]


def test_resume_changes_applied_and_refused(tmp_path, monkeypatch):
    recorded = Config(dict(
        model=dict(type='Net', init_cfg=dict(type='Pretrained')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        param_scheduler=[dict(type='CosineAnnealingLR', T_max=2, end=2)],
        train_cfg=dict(max_epochs=2)))
    monkeypatch.setattr(launch, 'checkpoint_config', lambda path: recorded)
    cfg = recorded.copy()
    cfg.merge_from_dict({'train_cfg.max_epochs': 3,
                         'optim_wrapper.optimizer.lr': 0.2,
                         'model.init_cfg': None})
    applied, refused = launch.resume_changes(cfg, 'ckpt.pth')
    assert applied == ['train_cfg.max_epochs: 2 -> 3',
                       'optim_wrapper.optimizer.lr: 0.1 -> 0.2']
    assert refused == []  # init_cfg does not matter when resuming
    cfg.merge_from_dict({'optim_wrapper.optimizer.type': 'AdamW',
                         'optim_wrapper.paramwise_cfg': dict(norm_decay_mult=0),
                         'model.depth': 2})
    applied, refused = launch.resume_changes(cfg, 'ckpt.pth')
    assert refused == ["model.depth: '<not set>' -> 2",
                       "optim_wrapper.optimizer.type: 'SGD' -> 'AdamW'",
                       'optim_wrapper.paramwise_cfg: False -> True']
    assert 'optim_wrapper.optimizer.type' not in ' '.join(applied)


def test_replay_schedule_matches_training(tmp_path):
    """Replaying the freshly built schedulers to the resumed step gives the
    optimizer and scheduler state that training itself reached."""
    sched = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=3),
             dict(type='CosineAnnealingLR', T_max=5, by_epoch=False)]
    trained = _runner(tmp_path / 'a', max_iters=4, param_scheduler=sched)
    trained.train()
    fresh = _runner(tmp_path / 'b', max_iters=4, param_scheduler=sched)
    fresh.optim_wrapper = fresh.build_optim_wrapper(fresh.optim_wrapper)
    fresh.param_schedulers = fresh.build_param_scheduler(
        fresh.param_schedulers)
    launch.replay_schedule(fresh, 0, 4)
    assert fresh.optim_wrapper.get_lr() == trained.optim_wrapper.get_lr()
    for a, b in zip(fresh.param_schedulers, trained.param_schedulers):
        assert a.last_step == b.last_step and \
            a._last_value == b._last_value


# ------------------------------------------------- output directories


def test_check_output_dirs_names_an_unwritable_directory(tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    cfg = Config(dict(work_dir=str(tmp_path / 'wd'), default_hooks=dict(
        checkpoint=dict(out_dir=str(blocker / 'out')))))
    with pytest.raises(launch.OutputDirError) as info:
        launch.check_output_dirs(cfg)
    assert str(info.value).startswith(
        f'Cannot write to {blocker}/out/wd (default_hooks.checkpoint.out_dir)'
        ': ')
    assert '--cfg-options default_hooks.checkpoint.out_dir=...' in str(
        info.value)
    cfg.work_dir = str(blocker / 'wd')
    with pytest.raises(launch.OutputDirError, match=r'\(work_dir\)'):
        launch.check_output_dirs(cfg)
    if os.geteuid() != 0:  # root writes into a read-only directory
        read_only = tmp_path / 'ro'
        read_only.mkdir(mode=0o500)
        cfg = Config(dict(work_dir=str(read_only)))
        with pytest.raises(launch.OutputDirError, match='PermissionError'):
            launch.check_output_dirs(cfg)


def test_check_output_dirs_free_space(tmp_path, monkeypatch):
    cfg = Config(dict(work_dir=str(tmp_path / 'wd'),
                      default_hooks=dict(checkpoint=dict(interval=1))))
    launch.check_output_dirs(cfg, needed_bytes=1000)
    usage = launch.shutil.disk_usage(str(tmp_path))
    monkeypatch.setattr(launch.shutil, 'disk_usage',
                        lambda path: usage._replace(free=2**20))
    with pytest.raises(launch.OutputDirError) as info:
        launch.check_output_dirs(cfg, needed_bytes=3 * 2**20)
    assert str(info.value).startswith(
        f'Only 1.0 MiB free in {tmp_path / "wd"} (work_dir); one checkpoint '
        'needs about 3.0 MiB')


@pytest.mark.parametrize('optimizer', ['SGD', 'AdamW'])
def test_estimate_checkpoint_bytes_matches_a_saved_checkpoint(
        tmp_path, optimizer):
    """The estimate against the size of a checkpoint really written
    (weights + optimizer state after a step, torch.save)."""
    from mmmetaformer.models.backbones import PoolFormer
    model = PoolFormer('s12')
    kwargs = dict(momentum=0.9) if optimizer == 'SGD' else {}
    opt = getattr(torch.optim, optimizer)(model.parameters(), lr=0.1,
                                          **kwargs)
    sum(o.sum() for o in model(torch.randn(1, 3, 32, 32))).backward()
    opt.step()
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    optimizer=opt.state_dict()), path)
    estimate = launch.estimate_checkpoint_bytes(model, f'mmengine.{optimizer}')
    assert 0.95 < estimate / path.stat().st_size < 1.05
