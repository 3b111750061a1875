"""Arch settings of a family: the :class:`ArchKey` table and its parser.

A family declares every key an arch may have (``arch_keys``, each an
:class:`ArchKey` with its default and validator), its named archs
(``arch_settings``, ``default_arch``) and its number of stages
(``num_stages``, the length of per-stage keys). :meth:`ArchParsing.
parse_arch` is the only place arch values are validated, for every family.
"""
import copy
import math
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple, Union

NUM_STAGES = 4
_REQUIRED = object()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


#: Validators of arch values: kind -> (check, description of valid values).
ARCH_KINDS: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    'positive_int': (lambda v: _is_int(v) and v > 0, 'a positive int'),
    'positive_number': (lambda v: _is_number(v) and v > 0,
                        'a positive number'),
    'bool': (lambda v: isinstance(v, bool), 'True or False'),
}


class ArchKey(NamedTuple):
    """How one arch key is given and validated.

    Args:
        default: Value when an arch dict leaves the key out; leave unset for
            a required key.
        kind (str): Validator of each value, a key of :data:`ARCH_KINDS`
            (``'positive_int'``, ``'positive_number'`` or ``'bool'``).
        per_stage (bool): The key has one value per stage; it may be given
            as a list of ``num_stages`` values (the family's number of
            stages) or (with ``broadcast``) as one value for every stage.
            Parsed, it is always a list.
        broadcast (bool): A single value is allowed for a per-stage key.
        optional (bool): ``None`` is allowed (per entry for per-stage keys),
            meaning "none" (e.g. no layer scale in that stage).
    """
    default: Any = _REQUIRED
    kind: str = 'positive_int'
    per_stage: bool = True
    broadcast: bool = True
    optional: bool = False

    @property
    def required(self) -> bool:
        """An arch dict must give the key (it has no default)."""
        return self.default is _REQUIRED

    def parse(self, owner: str, key: str, value,
              num_stages: int = NUM_STAGES) -> Any:
        """Return ``value`` validated (per-stage keys as a list of
        ``num_stages`` values).

        Raises:
            ValueError: Naming ``owner``, the key, the stage and the valid
                values.
        """
        if not self.per_stage:
            self._check(value, f'{owner}: arch[{key!r}] is {value!r}; it '
                        'must be {valid}.')
            return value
        shape = (f'{num_stages} values (one per stage)' +
                 (', or one value for all stages' if self.broadcast else ''))
        if isinstance(value, (list, tuple)):
            if len(value) != num_stages:
                raise ValueError(
                    f'{owner}: arch[{key!r}] must be {shape}, got '
                    f'{len(value)} values: {value!r}.')
            values = list(value)
        elif self.broadcast:
            values = [value] * num_stages
        else:
            raise ValueError(f'{owner}: arch[{key!r}] must be a list of '
                             f'{shape}, got {value!r}.')
        for stage, item in enumerate(values):
            self._check(item, f'{owner}: arch[{key!r}] of stage {stage} is '
                        f'{item!r}; each entry must be {{valid}} ({key} is '
                        f'{shape}).')
        return values

    def _check(self, value, message: str) -> None:
        """Raise ``message`` (``{valid}`` filled in) for an invalid value."""
        check, valid = ARCH_KINDS[self.kind]
        if check(value) or (self.optional and value is None):
            return
        if self.optional:
            valid += ' or None'
        raise ValueError(message.replace('{valid}', valid))


class ArchParsing:
    """The arch table of a family and its parser (a part of
    :class:`~.base.MetaFormerBackbone`).

    Class attributes: ``arch_settings`` (named archs, ``{name: {arch key:
    value}}``), ``default_arch`` (the name used when ``arch`` is not given),
    ``arch_keys`` (``{key: ArchKey(...)}``, every key an arch may have) and
    ``num_stages`` (the number of values of a per-stage key).
    """
    arch_settings: Dict[str, dict] = {}
    default_arch: Optional[str] = None
    arch_keys: Dict[str, ArchKey] = {
        'embed_dims': ArchKey(broadcast=False),
        'depths': ArchKey(broadcast=False),
        'mlp_ratios': ArchKey(default=4, kind='positive_number'),
    }
    num_stages: int = NUM_STAGES

    @classmethod
    def parse_arch(cls, arch: Union[str, dict, None]) -> dict:
        """Resolve ``arch`` to a complete, validated settings dict.

        Every key of ``arch_keys`` is present; per-stage keys are lists of
        ``num_stages`` values. This is the only place arch values are
        validated (each key by its :class:`ArchKey`, then
        :meth:`validate_arch` for relations between keys).

        Raises:
            ValueError: For an unknown arch name, missing or unknown keys, or
                an invalid value (naming the key, the stage and the valid
                values).
        """
        arch = cls.check_arch_keys(cls.arch_dict(arch))
        settings = {}
        for key, spec in cls.arch_keys.items():
            value = copy.deepcopy(arch.get(key, spec.default))
            settings[key] = spec.parse(cls.__name__, key, value,
                                       cls.num_stages)
        cls.validate_arch(settings)
        return settings

    @classmethod
    def check_arch_keys(cls, arch: dict) -> dict:
        """Raise a ``ValueError`` listing the missing and unknown keys of an
        arch dict, the valid keys and the required ones (``arch_keys``);
        return ``arch``."""
        required = {k for k, spec in cls.arch_keys.items() if spec.required}
        missing = required - set(arch)
        unknown = set(arch) - set(cls.arch_keys)
        if missing or unknown:
            raise ValueError(
                f'Invalid arch dict for {cls.__name__}: missing keys '
                f'{sorted(missing)}, unknown keys {sorted(unknown)}; the '
                f'valid keys are {sorted(cls.arch_keys)} (required: '
                f'{sorted(required)}).')
        return arch

    @classmethod
    def arch_dict(cls, arch: Union[str, dict, None]) -> dict:
        """The (unvalidated) arch dict of a name, a dict or None (the
        family's ``default_arch``)."""
        if arch is None:
            if cls.default_arch is None:
                raise ValueError(f'{cls.__name__} needs an arch: one of '
                                 f'{sorted(cls.arch_settings)} or a dict.')
            arch = cls.default_arch
        if isinstance(arch, str):
            if arch not in cls.arch_settings:
                raise ValueError(
                    f'Unknown arch {arch!r} for {cls.__name__}; valid choices '
                    f'are {sorted(cls.arch_settings)} or a dict with keys '
                    f'{sorted(cls.arch_keys)}.')
            return dict(cls.arch_settings[arch])
        if not isinstance(arch, dict):
            raise ValueError(f'arch must be a str or a dict, got '
                             f'{type(arch).__name__}.')
        return dict(arch)

    @classmethod
    def validate_arch(cls, settings: dict) -> None:
        """Checks across arch keys (e.g. heads dividing channels); raise a
        ``ValueError`` naming the keys. ``settings`` has every key, each
        valid on its own. Default: nothing."""

    def arch_value(self, key: Optional[str], stage: int):
        """The value of arch ``key`` for ``stage`` (None for ``key=None``)."""
        if key is None:
            return None
        value = self.arch[key]
        return value[stage] if self.arch_keys[key].per_stage else value
