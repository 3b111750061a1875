"""The models the speed suite (``speed.py``) times this package against.

Each *case* of the suite is one backbone of this package ("ours") and, where
one exists, a *peer* computing the same function on the same weights:

* ``timm``: timm's MetaFormer models (PoolFormer v1/v2, ConvFormer,
  CAFormer), their multi-scale features through timm's own
  ``forward_intermediates``. The weights are timm's state_dict filled by the
  parity rule (:func:`mmmetaformer.testing.parity.fill_tensor`) and loaded
  into ours through this package's timm-key conversion (the path a user's
  timm checkpoint takes), so both run the same weights.
* ``rest_official``: the literal official ResT / ResTv2 formulation of
  :mod:`mmmetaformer.testing.rest_official` (tokens (B, N, C), explicit
  attention matrices, ``nn.InstanceNorm2d``), official state_dict filled by
  the parity rule and loaded into ours through the official-key conversion.
* ``mmcv_deform``: CycleMLP with every Cycle FC computed as the official code
  does, a 1x1 deformable convolution with one constant offset per input
  channel, here by mmcv's compiled ``deform_conv2d`` (what a user of the
  official code runs on mmcv 2.x, where torchvision's CPU build is missing).
* ``model:<Name>:<arch>``: a different model of this package (e.g. CAFormer-S18
  as the yard-stick for families without an external implementation). Its
  outputs are not comparable: no agreement is printed.

timm is a benchmark-only dependency, installed outside the virtual
environment by ``tools/benchmarks/setup_bench.sh`` (``pip install --no-deps
--target``). timm imports torchvision, which has no CPU build for the pinned
torch: :func:`import_timm` puts a small import stand-in
(``tools/benchmarks/_stubs/torchvision``) on ``sys.path`` when no real
torchvision exists; it is never part of the package.
"""
import copy
import importlib
import importlib.util
import os
import os.path as osp
import sys
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

HERE = osp.dirname(osp.abspath(__file__))
STUBS = osp.join(HERE, '_stubs')
SETUP_SCRIPT = 'tools/benchmarks/setup_bench.sh'


def bench_site() -> str:
    """Directory timm is installed into: ``$MMMETAFORMER_BENCH_SITE``, else
    ``$MMMETAFORMER_CACHE/bench-site`` (default cache
    ``~/.cache/mmmetaformer``, as ``tools/setup_env.sh``)."""
    site = os.environ.get('MMMETAFORMER_BENCH_SITE')
    if site:
        return site
    cache = os.environ.get('MMMETAFORMER_CACHE',
                           osp.join(osp.expanduser('~'), '.cache',
                                    'mmmetaformer'))
    return osp.join(cache, 'bench-site')


def import_timm(site: Optional[str] = None):
    """Import timm from the benchmark site directory (see :func:`bench_site`).

    Adds the site directory, and the torchvision stand-in when no real
    torchvision is importable, to ``sys.path`` of this process.

    Raises:
        ImportError: timm is not installed there, with the command that
            installs it.
    """
    if 'timm' in sys.modules:
        return sys.modules['timm']
    site = site or bench_site()
    if osp.isdir(site) and site not in sys.path:
        sys.path.append(site)
    if importlib.util.find_spec('timm') is None:
        raise ImportError(
            f'timm is not installed in {site}: run `bash {SETUP_SCRIPT}` '
            '(or set MMMETAFORMER_BENCH_SITE to where it is).')
    if importlib.util.find_spec('torchvision') is None and \
            STUBS not in sys.path:
        sys.path.append(STUBS)
    return importlib.import_module('timm')


def backbone_class(name: str) -> type:
    """A backbone class of this package by its registered name.

    Raises:
        KeyError: No such backbone, with the registered names.
    """
    import mmmetaformer  # noqa: F401  (registers the backbones)
    from mmmetaformer.registry import MODELS
    cls = MODELS.get(name)
    if cls is None:
        raise KeyError(f'No backbone {name!r} in mmmetaformer; registered: '
                       f'{sorted(MODELS.module_dict)}.')
    return cls


def parity_filled(state_dict: Dict[str, torch.Tensor]
                  ) -> Dict[str, torch.Tensor]:
    """``state_dict`` with every entry replaced by the parity fill rule
    (real-scale weights, deterministic per key name), dtypes kept."""
    from mmmetaformer.testing.parity import fill_tensor
    return {
        key: fill_tensor(key, value.shape).to(value.dtype)
        for key, value in state_dict.items()
    }


def load_clean(model: nn.Module, state_dict: Dict[str, torch.Tensor],
               source: str) -> None:
    """``model.load_converted`` that must load every tensor of ``model``.

    Raises:
        RuntimeError: A key was missing or unexpected.
    """
    report = model.load_converted(state_dict, source=source)
    if not report.clean or report.missing:
        raise RuntimeError(f'{source}: the weights did not load cleanly:\n'
                           f'{report.summary()}')


class TimmFeatures(nn.Module):
    """A timm MetaFormer as a multi-scale backbone: the 4 stage outputs
    (NCHW) from timm's ``forward_intermediates``; the classifier never
    runs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(
            self.model.forward_intermediates(x, intermediates_only=True))


def build_ours(name: str, arch: str, **kwargs) -> nn.Module:
    """Our backbone ``name`` / ``arch`` with parity-filled weights."""
    model = backbone_class(name)(arch, **kwargs)
    load_clean(model, parity_filled(model.state_dict()), 'parity fill')
    return model


def timm_pair(name: str, arch: str, timm_name: str,
              **kwargs) -> Tuple[nn.Module, nn.Module]:
    """(ours, timm peer) on the same parity-filled weights, loaded into ours
    through the timm-key conversion."""
    timm = import_timm()
    peer = timm.create_model(timm_name, pretrained=False)
    state_dict = parity_filled(peer.state_dict())
    peer.load_state_dict(state_dict)
    ours = backbone_class(name)(arch, **kwargs)
    load_clean(ours, state_dict, f'timm {timm_name}')
    return ours, TimmFeatures(peer)


def rest_official_pair(name: str, arch: str,
                       **kwargs) -> Tuple[nn.Module, nn.Module]:
    """(ours, official formulation) for ``ResT`` / ``ResTV2`` on the same
    parity-filled weights, loaded into ours through the official-key
    conversion."""
    from mmmetaformer.testing.rest_official import (OfficialResT,
                                                    OfficialResTV2)
    cls = backbone_class(name)
    settings = cls.parse_arch(arch)
    official_cls = OfficialResT if name == 'ResT' else OfficialResTV2
    peer = official_cls(settings['embed_dims'], settings['depths'],
                        settings['num_heads'])
    state_dict = parity_filled(peer.state_dict())
    peer.load_state_dict(state_dict)
    ours = cls(arch, **kwargs)
    load_clean(ours, state_dict, f'official {name}')
    return ours, peer


class MmcvDeformCycleFC(nn.Module):
    """The official Cycle FC computation on the weights of one of our Cycle
    FC modules (shared, not copied): a 1x1 deformable convolution whose
    offsets are the module's constant ``offset`` buffer expanded over the map
    (one deformable group per input channel), by mmcv's compiled
    ``deform_conv2d``; channels-last in and out like ours."""

    def __init__(self, cycle_fc: nn.Module) -> None:
        super().__init__()
        self.cycle_fc = cycle_fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from mmcv.ops import deform_conv2d
        fc = self.cycle_fc
        # mmcv's CPU kernel is float32/float64 only: under bf16 autocast the
        # peer computes its Cycle FCs in float32.
        x = x.permute(0, 3, 1, 2).float().contiguous()
        batch, channels, height, width = x.shape
        offset = fc.offset.float().expand(batch, -1, height,
                                          width).contiguous()
        weight = fc.weight.float().view(fc.weight.shape[0], channels, 1, 1)
        out = deform_conv2d(x, offset, weight, 1, 0, 1, 1, channels, False,
                            batch)
        if fc.bias is not None:
            out = out + fc.bias.float().view(1, -1, 1, 1)
        return out.permute(0, 2, 3, 1)


def replace_modules(model: nn.Module, class_name: str,
                    wrapper) -> nn.Module:
    """A deep copy of ``model`` with every submodule of class ``class_name``
    wrapped by ``wrapper`` (a callable taking the copied submodule)."""
    model = copy.deepcopy(model)
    found = 0
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if type(child).__name__ == class_name:
                setattr(module, child_name, wrapper(child))
                found += 1
    if not found:
        raise RuntimeError(f'No {class_name} module in '
                           f'{type(model).__name__}.')
    return model


def mmcv_deform_pair(name: str, arch: str,
                     **kwargs) -> Tuple[nn.Module, nn.Module]:
    """(ours, ours with every Cycle FC by mmcv's ``deform_conv2d``)."""
    importlib.import_module('mmcv.ops')  # fails early if the ops are missing
    ours = build_ours(name, arch, **kwargs)
    return ours, replace_modules(ours, 'CycleFC', MmcvDeformCycleFC)


def build_case_models(ours_name: str, arch: str, kwargs: dict,
                      peer: Optional[str]
                      ) -> Tuple[nn.Module, Optional[nn.Module], bool]:
    """Build one case.

    Args:
        ours_name (str): Registered backbone name.
        arch (str): Its arch.
        kwargs (dict): Constructor arguments of ours.
        peer (str | None): ``'timm:<timm model name>'``, ``'rest_official'``,
            ``'mmcv_deform'``, ``'model:<Name>:<arch>'`` or None.

    Returns:
        tuple: ``(ours, peer_model or None, comparable)``; ``comparable`` says
        whether both compute the same function (outputs can be compared).
    """
    if peer is None:
        return build_ours(ours_name, arch, **kwargs), None, False
    kind, _, rest = peer.partition(':')
    if kind == 'timm':
        return (*timm_pair(ours_name, arch, rest, **kwargs), True)
    if kind == 'rest_official':
        return (*rest_official_pair(ours_name, arch, **kwargs), True)
    if kind == 'mmcv_deform':
        return (*mmcv_deform_pair(ours_name, arch, **kwargs), True)
    if kind == 'model':
        other_name, _, other_arch = rest.partition(':')
        return (build_ours(ours_name, arch, **kwargs),
                build_ours(other_name, other_arch, out_norm=None), False)
    raise ValueError(f'Unknown peer {peer!r}; valid kinds: timm:<name>, '
                     'rest_official, mmcv_deform, model:<Name>:<arch>.')
