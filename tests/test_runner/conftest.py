import pytest

from tests.test_runner.utils import interval_checkpoint_runner


@pytest.fixture(scope='session')
def runner_checkpoint(tmp_path_factory):
    """A checkpoint written by Runner.train() after 2 iterations, and the
    model's state at that point."""
    work_dir = tmp_path_factory.mktemp('ckpt')
    runner = interval_checkpoint_runner(work_dir, max_iters=2)
    runner.train()
    state = {k: v.clone() for k, v in runner.model.state_dict().items()}
    return work_dir / 'iter_2.pth', state
