"""Which backbone family and arch a checkpoint belongs to.

A load that does not fit (too few tensors, many unexpected or missing ones,
a shape mismatch) says what the file *is* instead of leaving the user to
suspect a damaged download: "it is an MLPMixer checkpoint (official key
names); this model is ResMLP".

Every registered family is built once per named arch on the ``meta``
device (shapes only: no memory, no initialisation), and the checkpoint's
keys are converted with the family's own :meth:`convert_checkpoint`. Keys
the family deliberately ignores (the ImageNet classifier, ...) and keys the
checkpoint kind cannot have are left out on both sides.

* The **family** is the one whose key *structure* fits best: keys with
  their block and stage numbers replaced by ``#``, compared as sets, so a
  checkpoint of any depth (a custom arch too) is recognised. Overlap
  ``2 * common / (checkpoint patterns + model patterns)``, at least
  :data:`MIN_OVERLAP`. Families with the same structure (e.g. PoolFormerV2
  and IdentityFormer, whose token mixers have no weights) are all named.
* The **arch** is the named arch of that family most of whose tensors the
  checkpoint has in name and shape (at least half), else none.
"""
import functools
import re
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn

#: Smallest structural overlap (see the module docstring) that names a
#: family.
MIN_OVERLAP = 0.5

_INDEX = re.compile(r'(?<=\.)\d+(?=\.|$)')


class Identity(NamedTuple):
    """What a checkpoint is.

    Attributes:
        family (str): Registered class name, e.g. ``'MLPMixer'``.
        key_format (str): What the family's converter detected
            (``'official'``, ``'timm'``, ``'native'``, ...).
        overlap (float): Structural overlap with the family.
        arch (str | None): The named arch whose tensors it holds, if any.
        matched (int): Tensors of that arch it holds in name and shape.
        total (int): Tensors of that arch.
        same_structure (tuple): Other families with the same overlap.
    """
    family: str
    key_format: str
    overlap: float
    arch: Optional[str] = None
    matched: int = 0
    total: int = 0
    same_structure: Tuple[str, ...] = ()


@functools.lru_cache(maxsize=None)
def _meta_model(family: str, arch: str) -> nn.Module:
    """``family(arch=arch)`` built on the meta device (shapes only)."""
    from mmmetaformer.registry import MODELS
    with torch.device('meta'):
        return MODELS.get(family)(arch=arch)


def _archs() -> Dict[str, List[str]]:
    """Registered family -> its named archs, the default one first."""
    from mmmetaformer.registry import MODELS
    return {
        name: sorted(cls.arch_settings,
                     key=lambda arch: (arch != cls.default_arch, arch))
        for name, cls in sorted(MODELS.module_dict.items())
        if hasattr(cls, 'convert_checkpoint') and cls.arch_settings
    }


def _patterns(keys) -> set:
    return {_INDEX.sub('#', k) for k in keys}


def _fit(family: str, arch: str, state_dict: Dict[str, torch.Tensor]
         ) -> Optional[Tuple[str, float, int, int, int]]:
    """``(key format, structural overlap, tensors matching in name and
    shape, model tensors, checkpoint tensors)`` of ``state_dict`` and
    ``family(arch)`` (ignored and expected-missing keys left out), or None when
    the family's converter cannot read the keys (or the family cannot be
    built on the meta device: it is then never named)."""
    from mmmetaformer.checkpoint.state_dict import _fits_as_reshape
    try:
        model = _meta_model(family, arch)
        converted, key_format = model.convert_checkpoint(state_dict)
    except Exception:  # a foreign layout may confuse a converter
        return None
    ignored = [re.compile(p) for p in model.ignored_keys()]
    absent = [re.compile(p) for p in model.expected_missing_keys(key_format)]
    source = {k: v for k, v in converted.items()
              if isinstance(v, torch.Tensor)
              and not any(p.match(k) for p in ignored)}
    target = {k: v for k, v in model.state_dict().items()
              if not any(p.match(k) for p in absent)}
    mine, theirs = _patterns(target), _patterns(source)
    overlap = 2 * len(mine & theirs) / max(len(mine) + len(theirs), 1)
    matched = sum(1 for k, v in source.items() if k in target and (
        v.shape == target[k].shape or _fits_as_reshape(v, target[k])))
    return key_format, overlap, matched, len(target), len(source)


def _family_fit(family: str, archs: List[str],
                state_dict: Dict[str, torch.Tensor]) -> Optional[Identity]:
    """The structural overlap of ``state_dict`` with ``family`` (its default
    arch: the key structure does not depend on the sizes)."""
    found = _fit(family, archs[0], state_dict)
    return None if found is None else Identity(family, *found[:2])


def _with_arch(identity: Identity, archs: List[str],
               state_dict: Dict[str, torch.Tensor]) -> Identity:
    """``identity`` with the named arch that shares the most tensors in
    name and shape with ``state_dict``, relative to the larger of the two
    (at least half), if any."""
    best = 0.5
    for arch in archs:
        found = _fit(identity.family, arch, state_dict)
        if found is None:
            continue
        matched, total, held = found[2:]
        if matched / max(total, held, 1) >= best:
            best = matched / max(total, held, 1)
            identity = identity._replace(arch=arch, matched=matched,
                                         total=total)
    return identity


def identify(state_dict: Dict[str, torch.Tensor],
             prefer: Optional[str] = None) -> Optional[Identity]:
    """The registered family (and named arch) ``state_dict`` is of.

    Args:
        state_dict (dict): The checkpoint's tensors (any key format; a
            dense checkpoint's backbone part).
        prefer (str, optional): The family named first among families of
            the same structure (the model's own).

    Returns:
        Identity | None: The best match, or None below :data:`MIN_OVERLAP`.
    """
    archs = _archs()
    fits = [fit for family in archs
            if (fit := _family_fit(family, archs[family], state_dict))]
    top = max((fit.overlap for fit in fits), default=0.0)
    if top < MIN_OVERLAP:
        return None
    tied = [f for f in fits if f.overlap >= top - 1e-9]
    tied.sort(key=lambda f: (f.family != prefer, f.family))
    best = _with_arch(tied[0], archs[tied[0].family], state_dict)
    return best._replace(same_structure=tuple(f.family for f in tied[1:]))


def describe(identity: Identity) -> str:
    """``"a PiT checkpoint (timm key names, arch 's': 150 of its 152
    tensors match in name and shape)"``."""
    also = ''
    if identity.same_structure:
        also = (f' (or {" / ".join(identity.same_structure)}: the same key '
                'names)')
    if identity.arch is None:
        sizes = 'its sizes are none of the named archs'
    else:
        sizes = (f'arch {identity.arch!r}: {identity.matched} of its '
                 f'{identity.total} tensors match in name and shape')
    article = 'an' if identity.family.startswith(
        ('A', 'E', 'I', 'O', 'U', 'MLP')) else 'a'
    return (f'{article} {identity.family} checkpoint{also} '
            f'({identity.key_format} key names, {sizes})')


#: Where dense checkpoints keep their backbone (mmdet / mmseg / mmpretrain,
#: detectron2): tried when the keys as given are of no family.
BACKBONE_PREFIXES = ('backbone.', 'backbone.bottom_up.')


def _identify_anywhere(state_dict: Dict[str, torch.Tensor],
                       prefer: str) -> Tuple[Optional[Identity], str]:
    """:func:`identify` on the keys as given, else under each of
    :data:`BACKBONE_PREFIXES`; returns the identity and the prefix."""
    identity = identify(state_dict, prefer)
    if identity is not None:
        return identity, ''
    for prefix in BACKBONE_PREFIXES:
        inside = {k[len(prefix):]: v for k, v in state_dict.items()
                  if k.startswith(prefix)}
        identity = identify(inside, prefer) if inside else None
        if identity is not None:
            return identity, prefix
    return None, ''


def hint_for(module: nn.Module, state_dict: Dict[str, torch.Tensor],
             source: str) -> str:
    """A sentence naming what ``state_dict`` is when it is not a checkpoint
    of ``module``'s family and arch, with the class and arch to use; ''
    when it is one (or nothing fits well enough to say)."""
    name = type(module).__name__
    if not hasattr(module, 'convert_checkpoint'):
        return ''
    identity, prefix = _identify_anywhere(state_dict, name)
    if identity is None:
        return ''
    where = f' (under prefix={prefix!r})' if prefix else ''
    if identity.family != name:
        arch = '' if identity.arch is None else f', arch={identity.arch!r}'
        return (f'{source}{where} is {describe(identity)}; this model is '
                f"{name}. Use type='mmmetaformer.{identity.family}'{arch} "
                'for it.')
    if identity.arch is None or getattr(
            module, 'arch', None) == type(module).parse_arch(identity.arch):
        return ''
    return (f'{source}{where} is {describe(identity)}; build {name} with '
            f'arch={identity.arch!r} for it.')
