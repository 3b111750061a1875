"""What several tests of :mod:`mmmetaformer.runner` share."""
from tests.test_tools.toy_runner import build_toy_runner


def interval_checkpoint_runner(work_dir, max_iters, **kwargs):
    """The toy Runner saving a checkpoint every 2 iterations."""
    return build_toy_runner(
        work_dir, max_iters,
        dict(type='CheckpointHook', interval=2, by_epoch=False), **kwargs)
