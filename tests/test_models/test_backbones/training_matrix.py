"""One training step of a family's tiny arch for every ``frozen_stages`` in
{-1, 0, 1, last} and ``with_cp`` in {False, True}. Run in a fresh
interpreter by ``test_training_matrix.py`` (``tests.crash_guard``): a
segmentation fault in a kernel then fails that test, naming the family and
the combination it was running (printed before each step)."""
import torch

from mmmetaformer.registry import MODELS
from .tiny_archs import ALL_TINY_ARCHS


def frozen_stage_values(name):
    """-1 (nothing), 0 (the stem), 1 and the family's largest value."""
    last = MODELS.build(dict(type=name,
                             **ALL_TINY_ARCHS[name])).max_frozen_stages()
    return sorted({-1, 0, 1, last})


def train_step(name, frozen_stages, with_cp):
    """Build, run one SGD step on a (2, 3, 64, 64) batch and check that every
    trainable parameter gets a finite gradient and the frozen ones stay
    put."""
    torch.manual_seed(0)
    model = MODELS.build(dict(type=name, **ALL_TINY_ARCHS[name],
                              frozen_stages=frozen_stages,
                              with_cp=with_cp)).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    outs = model(torch.randn(2, 3, 64, 64))
    loss = sum(o.square().mean() for o in outs)
    assert torch.isfinite(loss), loss
    if not trainable:  # everything frozen: nothing to train
        assert not loss.requires_grad
        return
    loss.backward()
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and (p.grad is None
                                       or not torch.isfinite(p.grad).all())]
    assert not missing, f'no finite gradient: {missing}'
    torch.optim.SGD(trainable, lr=0.1).step()
    moved = [n for n, p in model.named_parameters()
             if not p.requires_grad and not torch.equal(p, before[n])]
    assert not moved, f'frozen parameters changed: {moved}'


def train(name):
    """Every combination for one family, in this process."""
    for frozen_stages in frozen_stage_values(name):
        for with_cp in (False, True):
            print(f'{name}: frozen_stages={frozen_stages} with_cp={with_cp}',
                  flush=True)
            train_step(name, frozen_stages, with_cp)
    print(f'{name}: all combinations trained', flush=True)
