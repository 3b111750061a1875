"""Tests of mmmetaformer.runner.resume: the checkpoint a run resumes
from."""
import pytest
import torch
from mmengine.config import Config

from mmmetaformer.runner import resume


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
    path, skipped = resume.find_resume_checkpoint(cfg)
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
    assert resume.find_resume_checkpoint(cfg) == (
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
    assert resume.find_resume_checkpoint(cfg)[0] == str(work_dir /
                                                       'model_7.pth')


def test_find_resume_checkpoint_nothing_is_an_error(tmp_path):
    (tmp_path / '.iter_2.pth.tmp').write_bytes(b'PK')
    cfg = Config(dict(work_dir=str(tmp_path)))
    with pytest.raises(resume.ResumeError) as error:
        resume.find_resume_checkpoint(cfg)
    message = str(error.value)
    assert f'no complete checkpoint to resume from in {tmp_path}' in message
    assert 'epoch_N.pth, iter_N.pth' in message
    assert f'skipped {tmp_path / ".iter_2.pth.tmp"}' in message
    cfg = Config(dict(work_dir=str(tmp_path / 'missing')))
    with pytest.raises(resume.ResumeError, match='does not exist'):
        resume.find_resume_checkpoint(cfg)


def test_resolve_resume(tmp_path, runner_checkpoint):
    cfg = Config(dict(work_dir=str(tmp_path), resume=False, load_from=None))
    assert resume.resolve_resume(cfg, None) == []
    assert cfg.resume is False and cfg.load_from is None
    path = str(runner_checkpoint[0])
    lines = resume.resolve_resume(cfg, path)
    assert cfg.resume is True and cfg.load_from == path
    assert lines == [f'--resume: resuming from {path}']
    # An explicitly named file that cannot be resumed is an error, not a
    # silent fallback to another file.
    empty = tmp_path / 'epoch_3.pth'
    empty.write_bytes(b'')
    with pytest.raises(resume.ResumeError, match='epoch_3.pth: empty file'):
        resume.resolve_resume(cfg, str(empty))
