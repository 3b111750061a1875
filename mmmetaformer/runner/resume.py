"""The checkpoint a run resumes from: ``--resume`` resolved
(:func:`resolve_resume`), the newest complete and loadable interval
checkpoint of a work dir (:func:`find_resume_checkpoint`), each candidate
read completely first (:func:`check_runner_checkpoint`)."""
import os
import os.path as osp
import re
from typing import List, Mapping, Optional, Sequence, Tuple

from mmmetaformer.runner.loaders import load_runner_checkpoint
from mmmetaformer.runner.saving import checkpoint_dir


class ResumeError(RuntimeError):
    """Nothing (usable) to resume from; the message says where it looked."""


def check_runner_checkpoint(path: str) -> Optional[str]:
    """Why ``path`` cannot be resumed from, or None if it can.

    The file is read completely (``weights_only=True``, the Runner's types
    allowed), so a truncated or corrupt file is found here and not halfway
    through ``Runner.resume``.

    Args:
        path (str): A local checkpoint file.

    Returns:
        str or None: The reason (missing, empty, unreadable with the
        error, not a training checkpoint), or None.
    """
    if not osp.isfile(path):
        return 'no such file'
    if osp.getsize(path) == 0:
        return 'empty file (0 bytes)'
    try:
        ckpt = load_runner_checkpoint(path, map_location='cpu')
    except Exception as error:  # noqa: BLE001  (any unreadable file)
        first_line = (str(error).strip().splitlines() or [''])[0][:300]
        return f'cannot be read ({type(error).__name__}: {first_line})'
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or 'iter' not in meta \
            or 'state_dict' not in ckpt:
        return ('not a training checkpoint of mmengine\'s Runner (needs '
                '"state_dict" and "meta" with "epoch"/"iter")')
    return None


def _checkpoint_name_templates(cfg) -> List[str]:
    """File-name templates of the checkpoint hook's interval checkpoints:
    its ``filename_tmpl``, else mmengine's ``epoch_{}.pth`` and
    ``iter_{}.pth``."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    tmpl = hook.get('filename_tmpl') if isinstance(hook, Mapping) else None
    return [tmpl] if tmpl else ['epoch_{}.pth', 'iter_{}.pth']


def find_resume_checkpoint(cfg) -> Tuple[str, List[Tuple[str, str]]]:
    """The newest complete and loadable interval checkpoint of a run.

    Candidates are the files in :func:`checkpoint_dir` whose names match the
    checkpoint hook's file-name template, newest step first (then newest
    modification time). Each is checked with
    :func:`check_runner_checkpoint`; the first that passes is returned.
    Temporary files of an interrupted save (``.<name>.tmp``) and failing
    candidates are returned as skipped, with the reason.

    Args:
        cfg (mmengine.Config): The run's config (``work_dir`` and
            ``default_hooks.checkpoint``).

    Returns:
        tuple[str, list[tuple[str, str]]]: The checkpoint path and the
        skipped ``(path, reason)`` pairs.

    Raises:
        ResumeError: No candidate passed; the message names the directory,
            the patterns looked for and every skipped file.
    """
    directory = checkpoint_dir(cfg)
    templates = _checkpoint_name_templates(cfg)
    candidates, skipped = _resume_candidates(directory, templates)
    for path in candidates:
        reason = check_runner_checkpoint(path)
        if reason is None:
            return path, skipped
        skipped.append((path, reason))
    raise ResumeError(_nothing_to_resume_message(directory, templates,
                                                 skipped))


def _resume_candidates(
        directory: str, templates: Sequence[str]
) -> Tuple[List[str], List[Tuple[str, str]]]:
    """The files of ``directory`` whose names match a checkpoint file-name
    template, newest step first (then newest modification time), and the
    temporary files of interrupted saves as skipped ``(path, reason)``."""
    from mmmetaformer.engine.hooks.checkpoint_hook import TMP_SUFFIX
    # the step is group 1
    patterns = [
        re.compile(re.escape(t).replace(r'\{\}', r'(\d+)') + '$')
        for t in templates
    ]
    candidates, skipped = [], []
    names = sorted(os.listdir(directory)) if osp.isdir(directory) else []
    for name in names:
        path = osp.join(directory, name)
        if name.startswith('.') and name.endswith(TMP_SUFFIX):
            skipped.append((path, 'incomplete save (temporary file left by '
                            'an interrupted run)'))
            continue
        for pattern in patterns:
            match = pattern.match(name)
            if match and osp.isfile(path):
                candidates.append(
                    (int(match.group(1)), osp.getmtime(path), path))
                break
    return [path for _, _, path in sorted(candidates, reverse=True)], skipped


def _nothing_to_resume_message(directory: str, templates: Sequence[str],
                               skipped: Sequence[Tuple[str, str]]) -> str:
    """The :class:`ResumeError` message of :func:`find_resume_checkpoint`:
    the directory, the patterns looked for and every skipped file."""
    looked_for = ', '.join(t.replace('{}', 'N') for t in templates)
    lines = [
        f'--resume: no complete checkpoint to resume from in {directory} '
        f'(looked for {looked_for}).'
    ]
    if not osp.isdir(directory):
        lines[0] = (f'--resume: the checkpoint directory {directory} does '
                    f'not exist (looked for {looked_for}).')
    lines += [f'  skipped {path}: {reason}' for path, reason in skipped]
    lines.append('Start the run without --resume, pass the work dir of the '
                 'run to continue with --work-dir, or name a checkpoint: '
                 '--resume PATH.')
    return '\n'.join(lines)


def resolve_resume(cfg, resume: Optional[str]) -> List[str]:
    """Set ``cfg.resume`` / ``cfg.load_from`` for a ``--resume`` argument.

    * ``None``: nothing changes (no resume);
    * ``'auto'``: the newest complete and loadable checkpoint of the run
      (:func:`find_resume_checkpoint`); nothing to resume is an error;
    * a path or URL: that checkpoint; a local file that cannot be resumed
      from is an error naming why (no silent fallback to another file).

    Args:
        cfg (mmengine.Config): Modified in place.
        resume (str, optional): The ``--resume`` value.

    Returns:
        list[str]: Log lines: the checkpoint chosen, and every file skipped
        with the reason.

    Raises:
        ResumeError: Nothing to resume from.
    """
    if resume is None:
        return []
    lines = []
    if resume == 'auto':
        path, skipped = find_resume_checkpoint(cfg)
        lines += [f'--resume: skipped {p}: {why}' for p, why in skipped]
    else:
        path = resume
        if '://' not in path:
            reason = check_runner_checkpoint(path)
            if reason is not None:
                raise ResumeError(f'--resume {path}: {reason}.')
    cfg.resume = True
    cfg.load_from = path
    lines.append(f'--resume: resuming from {path}')
    return lines
