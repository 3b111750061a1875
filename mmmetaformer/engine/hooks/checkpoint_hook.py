"""A checkpoint hook whose checkpoints survive a kill at any moment.

mmengine 0.10.7's ``CheckpointHook`` with ``max_keep_ckpts`` removes the
oldest kept checkpoint *before* it writes the new one, and writes the new one
in place: a process killed during the save (out of memory, a preempted job,
Ctrl-C twice) can leave no checkpoint at all, or a truncated one that the
``last_checkpoint`` pointer names.

:class:`AtomicCheckpointHook` saves each interval checkpoint to a hidden
temporary file in the same directory, ``fsync``-s it, renames it over the
final name (``os.replace``, atomic on POSIX and Windows for one file system)
and only then updates ``last_checkpoint`` (also atomically) and removes the
checkpoints beyond ``max_keep_ckpts``. At every moment the directory holds
the previous complete checkpoint or the new complete one. Leftover
``.<name>.tmp`` files are what a killed save leaves; resume ignores them
(:func:`mmmetaformer.runner.resume.find_resume_checkpoint`). A save that fails
(disk full, a file system gone read-only) removes its temporary file and
raises :class:`CheckpointSaveError` naming the checkpoint and the free space
(:func:`save_error`); the previous checkpoints stay.

``tools/train.py`` uses this hook in place of mmengine's ``CheckpointHook``
(:func:`mmmetaformer.runner.saving.use_atomic_checkpoints`). Remote back-ends
(``out_dir='s3://...'``) have no rename: there the parent class's behaviour
is kept. Best checkpoints (``save_best``) are written by the parent class.
"""
import os
import os.path as osp
import shutil

from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook

from mmmetaformer.registry import HOOKS

#: Suffix of the temporary file a save writes before renaming it.
TMP_SUFFIX = '.tmp'


def temporary_name(filename: str) -> str:
    """The hidden temporary name a checkpoint is written under first.

    Args:
        filename (str): The final file name (no directory).

    Returns:
        str: ``.<filename>.tmp``.
    """
    return f'.{filename}{TMP_SUFFIX}'


def fsync_path(path: str) -> None:
    """Flush a file's (or a directory's) data to the storage device.

    Args:
        path (str): A file or, on POSIX, a directory (makes a rename in it
            durable). Directories are skipped where they cannot be opened
            (Windows).
    """
    flags = os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0) if osp.isdir(
        path) else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except (IsADirectoryError, PermissionError):
        return  # Windows: directories cannot be opened
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_file(tmp_path: str, final_path: str) -> None:
    """Make a completely written ``tmp_path`` appear as ``final_path``.

    ``fsync`` the file, rename it (replacing an existing ``final_path``),
    ``fsync`` the directory.

    Args:
        tmp_path (str): The written temporary file.
        final_path (str): Its final name, in the same directory.
    """
    fsync_path(tmp_path)
    os.replace(tmp_path, final_path)
    fsync_path(osp.dirname(osp.abspath(final_path)))


def write_text_atomic(path: str, text: str) -> None:
    """Write a small text file so that readers see the old or the new
    content, never a partial one.

    Args:
        path (str): The file.
        text (str): Its new content.
    """
    directory, name = osp.split(osp.abspath(path))
    tmp_path = osp.join(directory, temporary_name(name))
    with open(tmp_path, 'w', encoding='utf-8') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    commit_file(tmp_path, path)


class CheckpointSaveError(OSError):
    """A checkpoint could not be written; the message names the file."""


def save_error(error: OSError, final_path: str,
               tmp_path: str) -> CheckpointSaveError:
    """The error to raise when writing ``final_path`` (through
    ``tmp_path``) failed with ``error``: the temporary file is removed
    first (a failed save on a full disk must not keep its part-written
    file there), and the message names the checkpoint, the error and the
    free space left.

    Args:
        error (OSError): What the write raised (e.g. ``ENOSPC``).
        final_path (str): The checkpoint being saved.
        tmp_path (str): The temporary file it was written to.

    Returns:
        CheckpointSaveError: With ``error``'s ``errno``, and ``path``, the
        checkpoint.
    """
    removed = ''
    if osp.exists(tmp_path):
        try:
            os.remove(tmp_path)
            removed = f'; its temporary file {tmp_path} was removed'
        except OSError as remove_error:
            removed = (f'; its temporary file {tmp_path} could not be '
                       f'removed ({remove_error})')
    directory = osp.dirname(osp.abspath(final_path))
    try:
        free = f', {shutil.disk_usage(directory).free / 2**20:.1f} MiB free ' \
            f'in {directory}'
    except OSError:
        free = ''
    reason = error.strerror or str(error)
    result = CheckpointSaveError(
        error.errno, f'Could not save the checkpoint {final_path}: {reason} '
        f'(errno {error.errno}{free}){removed}. The previous checkpoints '
        'are kept; free some space or set default_hooks.checkpoint.out_dir '
        'to another directory, then resume with --resume.')
    result.path = final_path
    return result


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with atomic saves, and outdated
    checkpoints removed only after the new one is complete.

    Takes exactly the arguments of ``mmengine.hooks.CheckpointHook``
    (``interval``, ``by_epoch``, ``max_keep_ckpts``, ``out_dir``,
    ``filename_tmpl``, ``save_best``, ...); see the module docstring for what
    changes. Use in a config::

        default_hooks = dict(
            checkpoint=dict(type='mmmetaformer.AtomicCheckpointHook',
                            interval=1, max_keep_ckpts=1))
    """

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not isinstance(self.file_backend, LocalBackend):
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        # The bookkeeping of the kept checkpoints is updated before the save
        # (as the parent does), so that the saved message hub records the
        # new list; the files themselves are removed after the save.
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        filename = self.filename_tmpl.format(step)
        final_path = osp.join(self.out_dir, filename)
        self.last_ckpt = final_path
        runner.message_hub.update_info('last_ckpt', final_path)

        tmp_name = temporary_name(filename)
        tmp_path = osp.join(self.out_dir, tmp_name)
        try:
            runner.save_checkpoint(
                self.out_dir,
                tmp_name,
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)
            if is_main_process():  # only the main process writes files
                commit_file(tmp_path, final_path)
        except OSError as error:
            raise save_error(error, final_path, tmp_path) from error
        if not is_main_process():
            return
        write_text_atomic(
            osp.join(runner.work_dir, 'last_checkpoint'), final_path)
        for old_step in outdated:
            old_path = osp.join(self.out_dir, self.filename_tmpl.format(old_step))
            if old_path != final_path and osp.isfile(old_path):
                os.remove(old_path)
