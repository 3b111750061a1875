import pytest
import torch


@pytest.fixture(autouse=True)
def _threads():
    """One torch thread per test: the machine has 2 shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
