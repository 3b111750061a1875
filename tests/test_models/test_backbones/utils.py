"""Helpers shared by the backbone tests."""
import torch

from mmmetaformer.models.backbones import base as base_module


def save(obj, tmp_path, name='ckpt.pth'):
    path = tmp_path / name
    torch.save(obj, path)
    return str(path)


def check_with_cp(plain, ckpt, num_blocks, monkeypatch, every_grad=False):
    """``ckpt`` (``with_cp=True``, the weights of ``plain``) checkpoints each
    of its ``num_blocks`` blocks once in training, gives ``plain``'s outputs
    and gradients, and checkpoints nothing in eval mode.

    Args:
        every_grad (bool): Every parameter must get a gradient (else only
            those of ``plain`` that get one are compared).
    """
    calls = []
    original = base_module.cp.checkpoint

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(base_module.cp, 'checkpoint', counting)
    x = torch.randn(2, 3, 64, 64)
    outs = [plain(x), ckpt(x)]
    assert len(calls) == num_blocks
    for a, b in zip(*outs):
        assert torch.allclose(a, b, atol=1e-6)
    sum(o.sum() for o in outs[0]).backward()
    sum(o.sum() for o in outs[1]).backward()
    for (n, p), (_, q) in zip(plain.named_parameters(),
                              ckpt.named_parameters()):
        if every_grad or p.grad is not None:
            assert torch.allclose(p.grad, q.grad, atol=1e-5, rtol=1e-4), n
    calls.clear()
    with torch.no_grad():
        ckpt.eval()(x)
    assert not calls
