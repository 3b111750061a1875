"""Tests of tools/train.py, tools/test.py and tools/dist_train.sh through
the command line a user runs, plus the data-path check they share."""
import importlib.util
import json
import math
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest
from mmengine.config import Config

from mmmetaformer import launch
from mmmetaformer.launch import missing_data_message, missing_data_paths

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PYTHON = sys.executable


def _env(**extra):
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS='1', PYTHONPATH=REPO, **extra)
    return env


def _load_tool(name):
    """Import tools/<name>.py as a module (``tools`` is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f'_mmmetaformer_tool_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_missing_coco_data_message(tmp_path, capsys, monkeypatch):
    missing_root = str(tmp_path / 'no_coco') + '/'
    monkeypatch.setenv('MMMETAFORMER_COCO_ROOT', missing_root)
    train_tool = _load_tool('train')
    with pytest.raises(SystemExit) as exc:
        train_tool.main([
            osp.join(REPO, 'configs/retinanet_poolformer_s12.py'),
            '--work-dir',
            str(tmp_path / 'wd')
        ])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f'train_dataloader.dataset.data_root: {missing_root}' in err
    assert 'MMMETAFORMER_COCO_ROOT=/path/to/dataset/ python tools/train.py' \
        in err
    assert 'MMMETAFORMER_ADE_ROOT' not in err  # only the relevant variable
    assert '--cfg-options train_dataloader.dataset.data_root=' in err
    assert not (tmp_path / 'wd').exists()  # stopped before the Runner


def test_test_missing_ade_annotations_message(tmp_path, capsys,
                                              monkeypatch):
    # The root exists but the annotation folder does not: the message names
    # the exact sub-path (data_prefix is joined with data_root).
    root = tmp_path / 'ade'
    (root / 'images' / 'validation').mkdir(parents=True)
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'')
    test_tool = _load_tool('test')
    monkeypatch.setenv('MMMETAFORMER_ADE_ROOT', str(root) + '/')
    with pytest.raises(SystemExit) as exc:
        test_tool.main(
            [osp.join(REPO, 'configs/semfpn_poolformer_s12.py'),
             str(ckpt)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    expected = osp.join(str(root) + '/', 'annotations/validation')
    assert f'test_dataloader.dataset.data_prefix.seg_map_path: {expected}' \
        in err
    assert 'images/validation' not in err  # that one exists
    assert 'MMMETAFORMER_ADE_ROOT' in err


def test_missing_data_paths_wrappers_and_remote(tmp_path):
    (tmp_path / 'imgs').mkdir()
    (tmp_path / 'ann.json').write_text('{}')
    root = str(tmp_path)
    cfg = Config(
        dict(
            train_dataloader=dict(
                dataset=dict(
                    type='ConcatDataset',
                    datasets=[
                        dict(data_root=root, ann_file='ann.json',
                             data_prefix=dict(img='imgs/')),
                        dict(type='RepeatDataset', times=2,
                             dataset=dict(data_root=root,
                                          ann_file='missing.json',
                                          data_prefix=dict(img='imgs/'))),
                        dict(data_root='s3://bucket/coco/',
                             ann_file='a.json'),
                    ])),
            val_dataloader=dict(
                dataset=dict(data_root=root + '/nope/', ann_file='a.json')),
            val_evaluator=dict(ann_file=root + '/val.json'),
        ))
    missing = missing_data_paths(cfg, ['train_dataloader', 'val_dataloader'])
    assert missing == [
        ('train_dataloader.dataset.ann_file',
         osp.join(root, 'missing.json')),
        ('val_dataloader.dataset.data_root', root + '/nope/'),
        ('val_evaluator.ann_file', root + '/val.json'),
    ]
    assert missing_data_paths(cfg, ['test_dataloader']) == []
    message = missing_data_message('x.py', missing)
    assert 'missing.json' in message and '--cfg-options' in message


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_two_cpu_processes(tmp_path):
    work_dir = tmp_path / 'wd'
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', 'tests/data/configs/toy_ddp.py',
         '2', '--work-dir', str(work_dir)],
        cwd=REPO, env=_env(PYTHON=PYTHON, PORT=str(_free_port())),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    reports = []
    for rank in range(2):
        with open(work_dir / f'rank{rank}.json') as f:
            reports.append(json.load(f))
    for rank, report in enumerate(reports):
        assert report['rank'] == rank and report['world_size'] == 2
        assert report['wrapper'] == 'MMDistributedDataParallel'
        assert report['norm'] == 'BatchNorm2d'  # SyncBN -> BN on CPU
        assert report['iters'] == 4
        assert len(report['seen']) == 4 * 2  # 4 iterations x batch 2
    # The sampler split the data between the ranks...
    assert not set(reports[0]['seen']) & set(reports[1]['seen'])
    # ...and DDP kept the two replicas identical.
    assert reports[0]['checksum'] == reports[1]['checksum']
    assert (work_dir / 'iter_4.pth').is_file()
    assert 'initialised a gloo process group (CPU)' in proc.stdout


# --------------------------------------------------- kill during a save

#: A 6-iteration toy run saving every 2 iterations and keeping one
#: checkpoint (as the demo config keeps one).
TOY_RESUME_CONFIG = f"""
_base_ = {osp.join(REPO, 'tests', 'data', 'configs', 'toy_ddp.py')!r}
model = dict(norm_cfg=dict(type='BN'))
train_dataloader = dict(num_workers=0, persistent_workers=False)
train_cfg = dict(max_iters=6)
default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=1))
custom_hooks = [dict(type='ToySaveBarrierHook', block_at=2)]
env_cfg = dict(dist_cfg=dict(backend='gloo'))
"""


def _train_command(config, work_dir, *extra):
    return [PYTHON, 'tools/train.py', str(config), '--work-dir',
            str(work_dir), *extra]


def test_train_killed_during_save_resumes_from_previous(tmp_path):
    config = tmp_path / 'toy_resume.py'
    config.write_text(TOY_RESUME_CONFIG)
    work_dir = tmp_path / 'wd'
    signal_file = tmp_path / 'saving'
    proc = subprocess.Popen(
        _train_command(config, work_dir), cwd=REPO,
        env=_env(TOY_SAVE_BARRIER=str(signal_file)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 240
        while not signal_file.exists():
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            assert time.time() < deadline, 'the save barrier was not reached'
            time.sleep(0.2)
        # The second checkpoint (iteration 4) is half written: kill now.
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # The previous checkpoint is still there and complete (mmengine's own
    # hook removes it before writing the new one)...
    assert launch.check_runner_checkpoint(str(work_dir / 'iter_2.pth')) \
        is None
    # ...and the new one was being written under a temporary name.
    assert signal_file.read_text() == str(work_dir / '.iter_4.pth.tmp')

    done = subprocess.run(
        _train_command(config, work_dir, '--resume'), cwd=REPO, env=_env(),
        capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert f'--resume: skipped {work_dir / ".iter_4.pth.tmp"}: incomplete ' \
        'save' in out
    assert f'--resume: resuming from {work_dir / "iter_2.pth"}' in out
    assert 'resumed epoch: 0, iter: 2' in out  # mmengine's own log line
    assert 'the config differs' not in out  # same config: nothing replayed
    # The run went on from iteration 2 to the configured end.
    final = work_dir / 'iter_6.pth'
    assert launch.check_runner_checkpoint(str(final)) is None
    from mmmetaformer.checkpoint import torch_load
    assert torch_load(str(final))['meta']['iter'] == 6
    assert not (work_dir / 'iter_2.pth').exists()  # max_keep_ckpts=1


def test_train_resume_with_nothing_to_resume(tmp_path, capsys):
    config = tmp_path / 'toy_resume.py'
    config.write_text(TOY_RESUME_CONFIG)
    work_dir = tmp_path / 'empty_wd'
    train_tool = _load_tool('train')
    with pytest.raises(SystemExit) as exc:
        train_tool.main([str(config), '--work-dir', str(work_dir),
                         '--resume'])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f'the checkpoint directory {work_dir} does not exist' in err
    assert 'Start the run without --resume' in err


def test_train_epochs_option_prints_changes(capsys):
    train_tool = _load_tool('train')
    args = train_tool.parse_args([
        osp.join(REPO, 'configs/demo/retinanet_poolformer_s12_demo.py'),
        '--epochs', '1'
    ])
    cfg = train_tool.build_cfg(args)
    assert cfg.train_cfg.max_epochs == 1
    assert cfg.param_scheduler[1].end == 1
    assert cfg.default_hooks.checkpoint.interval == 1
    assert cfg.train_cfg.val_interval == 1
    out = capsys.readouterr().out
    assert '[mmmetaformer] --epochs 1: train_cfg.max_epochs 24 -> 1' in out
    assert 'default_hooks.checkpoint.interval 4 -> 1' in out
    # The wrong unit for the config is refused with the right option named.
    args = train_tool.parse_args([
        osp.join(REPO, 'configs/demo/retinanet_poolformer_s12_demo.py'),
        '--iters', '10'
    ])
    with pytest.raises(SystemExit, match='use --epochs N'):
        train_tool.build_cfg(args)


@pytest.fixture
def tool_process_state():
    """Put back what tools/*.py change in the calling process when run
    in-process: torch threads and mmengine's checkpoint loaders."""
    import torch
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    launch.restore_runner_checkpoint_loaders()


def test_train_refuses_unconverted_official_load_from(
        tmp_path, capsys, monkeypatch, tool_process_state):
    """An official mmdet 2.x PoolFormer checkpoint given to load_from would
    load non-strictly and leave the backbone random: train.py stops and
    names the converter instead."""
    import torch

    from mmmetaformer.demo import generate_demo_data
    from tests.test_tools import legacy_checkpoints as legacy
    root = str(tmp_path / 'demo') + '/'
    generate_demo_data(root, num_train=1, num_val=1, datasets=('coco', ))
    monkeypatch.setenv('MMMETAFORMER_DEMO_ROOT', root)
    src = str(tmp_path / 'official.pth')
    torch.save({'state_dict': legacy.poolformer_mmdet2('s12', 'retinanet')},
               src)
    config = osp.join(REPO, 'configs/demo/retinanet_poolformer_s12_demo.py')
    train_tool = _load_tool('train')
    with pytest.raises(SystemExit) as exc:
        train_tool.main([
            config, '--work-dir',
            str(tmp_path / 'wd'), '--epochs', '1', '--cfg-options',
            f'load_from={src}'
        ])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert 'mmdet 2.x detector checkpoint' in err
    assert f'tools/model_converters/mmdet2_to_mmdet3.py {src} {config}' in err


# ------------------------------------------------ resume after a change

#: An epoch-based toy run (4 iterations per epoch) with the demo config's
#: kind of schedule: an iteration-based linear warm-up across the first
#: epoch boundary, then a cosine by epoch (eta_min=0: every lr is
#: proportional to the base lr).
TOY_SCHEDULE_CONFIG = f"""
_base_ = {osp.join(REPO, 'tests', 'data', 'configs', 'toy_ddp.py')!r}
model = dict(norm_cfg=dict(type='BN'))
train_dataloader = dict(num_workers=0, persistent_workers=False,
                        dataset=dict(num_samples=8))
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=12)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=6),
    dict(type='CosineAnnealingLR', T_max=12, by_epoch=True, begin=0, end=12,
         eta_min=0)
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=True))
custom_hooks = [dict(type='ToyLrRecordHook')]
env_cfg = dict(dist_cfg=dict(backend='gloo'))
"""


def _train_in_process(train_tool, config, work_dir, *extra):
    """Run tools/train.py in this process (a unique experiment name keeps
    mmengine's logger and message hub of each run apart); returns what it
    printed and the lr of each iteration of this run."""
    import uuid
    lr_file = osp.join(work_dir, 'lr.jsonl')
    runs = 0
    if osp.isfile(lr_file):
        with open(lr_file) as f:
            runs = len(f.readlines())
    train_tool.main([
        str(config), '--work-dir', str(work_dir), *extra, '--cfg-options',
        f'experiment_name=toy_{uuid.uuid4().hex[:12]}'
    ])
    with open(lr_file) as f:
        lines = f.readlines()
    assert len(lines) == runs + 1
    return json.loads(lines[-1])


@pytest.fixture
def schedule_run(tmp_path, tool_process_state):
    """A finished 2-epoch run (``--epochs 2``) and a fresh 3-epoch run's lr
    per iteration."""
    config = tmp_path / 'toy_schedule.py'
    config.write_text(TOY_SCHEDULE_CONFIG)
    train_tool = _load_tool('train')
    fresh = _train_in_process(train_tool, config, tmp_path / 'fresh',
                              '--epochs', '3')
    work_dir = tmp_path / 'wd'
    _train_in_process(train_tool, config, work_dir, '--epochs', '2')
    return train_tool, config, work_dir, fresh


def test_resume_with_more_epochs_follows_the_new_schedule(schedule_run,
                                                          capsys):
    """`--epochs 2`, then `--epochs 3 --resume`: epoch 3 gets the lr of a
    run started with 3 epochs (the checkpoint's schedulers, restored as
    they were, ended at epoch 2 and made the lr of epoch 3 rise)."""
    train_tool, config, work_dir, fresh = schedule_run
    capsys.readouterr()
    resumed = _train_in_process(train_tool, config, work_dir, '--epochs',
                                '3', '--resume')
    out = capsys.readouterr().out
    assert [row[:2] for row in resumed] == [row[:2] for row in fresh[8:]]
    assert [row[2] for row in resumed] == pytest.approx(
        [row[2] for row in fresh[8:]], rel=1e-12)
    assert 'the config differs from' in out
    assert 'param_scheduler[1].end: 2 -> 3' in out
    assert 'train_cfg.max_epochs: 2 -> 3' in out


def test_resume_with_another_lr_uses_it(schedule_run, capsys):
    """A new optim_wrapper.optimizer.lr on resume is applied (every lr of
    this schedule is proportional to the base lr: twice the base lr gives
    twice the fresh run's lr), and said."""
    train_tool, config, work_dir, fresh = schedule_run
    capsys.readouterr()
    resumed = _train_in_process(train_tool, config, work_dir, '--epochs',
                                '3', '--resume', '--cfg-options',
                                'optim_wrapper.optimizer.lr=0.1')
    out = capsys.readouterr().out
    assert [row[2] for row in resumed] == pytest.approx(
        [2 * row[2] for row in fresh[8:]], rel=1e-12)
    assert 'optim_wrapper.optimizer.lr: 0.05 -> 0.1' in out


def test_resume_with_another_model_stops_naming_the_change(
        schedule_run, capsys):
    train_tool, config, work_dir, _ = schedule_run
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        train_tool.main([
            str(config), '--work-dir', str(work_dir), '--epochs', '3',
            '--resume', '--cfg-options', 'model.channels=16',
            'optim_wrapper.optimizer.type=AdamW'
        ])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert 'in what a resume cannot change' in err
    assert "model.channels: '<not set>' -> 16" in err
    assert "optim_wrapper.optimizer.type: 'SGD' -> 'AdamW'" in err
    assert f'--cfg-options load_from={work_dir}' in err
    assert 'epoch_3.pth' not in os.listdir(work_dir)


def test_train_unwritable_out_dir_stops_before_training(
        tmp_path, capsys, tool_process_state):
    """A checkpoint directory that cannot be written ends the run before
    the first iteration (it was found at the first save, after a whole
    interval of training)."""
    config = tmp_path / 'toy_schedule.py'
    config.write_text(TOY_SCHEDULE_CONFIG)
    blocker = tmp_path / 'read_only'
    blocker.write_text('')  # a file: nothing can be created below it
    work_dir = tmp_path / 'wd'
    train_tool = _load_tool('train')
    with pytest.raises(SystemExit) as exc:
        train_tool.main([
            str(config), '--work-dir', str(work_dir), '--cfg-options',
            f'default_hooks.checkpoint.out_dir={blocker}'
        ])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f'Cannot write to {blocker}/wd '
                          '(default_hooks.checkpoint.out_dir): ')
    assert not (work_dir / 'lr.jsonl').exists()  # no iteration was run


# ------------------------------------------------ --amp and --compile runs

#: Two iterations of the demo config on a tiny demo set, at 64 px.
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo',
                       'retinanet_poolformer_s12_demo.py')
TINY_DEMO_CONFIG = f"""
_base_ = {DEMO_CONFIG!r}
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PackDetInputs')]))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=2)
val_cfg = val_dataloader = val_evaluator = None
test_cfg = test_dataloader = test_evaluator = None
param_scheduler = []
custom_hooks = []
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2),
                     logger=dict(interval=1))
"""


@pytest.fixture(scope='module')
def tiny_demo(tmp_path_factory):
    from mmmetaformer.demo import generate_demo_data
    root = tmp_path_factory.mktemp('tiny_demo')
    generate_demo_data(str(root) + '/', num_train=2, num_val=1,
                       datasets=('coco', ))
    config = root / 'tiny_demo.py'
    config.write_text(TINY_DEMO_CONFIG)
    return str(root) + '/', config


def _run_tiny_demo(tiny_demo, work_dir, *options):
    root, config = tiny_demo
    done = subprocess.run(
        _train_command(config, work_dir, *options), cwd=REPO,
        env=_env(MMMETAFORMER_DEMO_ROOT=root), capture_output=True,
        text=True, timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    from mmmetaformer.checkpoint import torch_load
    return out, torch_load(str(work_dir / 'iter_2.pth'))


def test_train_amp_on_cpu_trains_in_bfloat16(tiny_demo, tmp_path):
    """``--amp`` without CUDA trains with CPUAmpOptimWrapper (bfloat16
    autocast); it used to stop with "--amp needs a CUDA device"."""
    out, ckpt = _run_tiny_demo(tiny_demo, tmp_path / 'wd', '--amp')
    assert ('[mmmetaformer] --amp: optim_wrapper '
            'mmmetaformer.CPUAmpOptimWrapper, bfloat16 autocast') in out
    assert 'loss_scaler' in ckpt['optimizer']  # AmpOptimWrapper's state
    assert ckpt['meta']['iter'] == 2
    losses = [float(line.split(' loss: ')[1].split()[0])
              for line in out.splitlines() if ' loss: ' in line]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)


def test_amp_picks_float16_on_cuda_and_keeps_other_wrappers(capsys):
    train_tool = _load_tool('train')
    demo = DEMO_CONFIG
    for cuda, expected in ((True, ('AmpOptimWrapper', 'float16')),
                           (False, ('mmmetaformer.CPUAmpOptimWrapper',
                                    'bfloat16'))):
        cfg = Config.fromfile(demo)
        train_tool.use_amp(cfg, cuda)
        assert (cfg.optim_wrapper.type, cfg.optim_wrapper.dtype) == expected
        train_tool.use_amp(cfg, cuda)  # already mixed precision: kept
        assert 'already uses' in capsys.readouterr().out
    cfg = Config.fromfile(demo)
    cfg.optim_wrapper.type = 'ApexOptimWrapper'
    with pytest.raises(SystemExit, match='uses ApexOptimWrapper'):
        train_tool.use_amp(cfg, False)


def test_train_compile_runs(tiny_demo, tmp_path):
    """``--compile`` with the ``aot_eager`` backend (dynamo's capture and
    AOTAutograd's forward/backward graphs, without inductor's C++ code
    generation, minutes on 2 cores) trains the demo model with its backbone
    compiled (``mmmetaformer.compile.compile_backbone``); checkpoint keys
    are those of the eager model."""
    out, ckpt = _run_tiny_demo(tiny_demo, tmp_path / 'wd', '--compile',
                               'aot_eager')
    assert ("--compile: torch.compile(backend='aot_eager') of the backbone, "
            'height and width dynamic') in out
    graphs = int(out.split('[mmmetaformer] --compile: ')[-1].split()[0])
    assert graphs > 0
    assert ckpt['meta']['iter'] == 2
    assert not any('_orig_mod' in k for k in ckpt['state_dict'])
    assert 'backbone.stem.conv.weight' in ckpt['state_dict']


def test_train_tool_allow_partial_option(capsys):
    """``tools/train.py --allow-partial`` (the option the refusal of a
    partial load names) reaches the backbone's init_cfg."""
    tool = _load_tool('train')
    config = osp.join(REPO, 'configs/retinanet_poolformer_s12.py')
    cfg = tool.build_cfg(tool.parse_args([config, '--allow-partial']))
    assert cfg.model.backbone.init_cfg.allow_partial is True
    assert 'init_cfg.allow_partial=True (--allow-partial)' in \
        capsys.readouterr().out
    cfg = tool.build_cfg(tool.parse_args([config]))
    assert 'allow_partial' not in cfg.model.backbone.init_cfg
