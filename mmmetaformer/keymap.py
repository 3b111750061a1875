"""Checkpoint key renaming: rules as data, one engine.

Every key map in this package (each family's official names, the dense
checkpoint converters' neck and head names) is a table of :data:`Rule`
tuples applied by :func:`rename_keys`. A rule is ``(pattern, template)``:

* ``pattern`` is a regular expression matched at the *start* of a key
  (:func:`re.match`); the matched part is replaced, the rest of the key is
  kept. End a pattern with ``$`` to match whole keys only.
* ``template`` is the replacement text. ``{N}`` inserts group ``N``;
  ``{N+k}``, ``{N-k}``, ``{N*k}`` and ``{N//k}`` insert integer arithmetic on
  group ``N`` (e.g. official ``stage1`` -> ``stages.{1-1}``). Nothing else is
  evaluated: templates are plain data.

For each key the *first* rule whose pattern matches is applied (one rule per
key), so order specific rules before general ones.
"""
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

#: ``(pattern, template)``; see the module docstring.
Rule = Tuple[str, str]

_FIELD = re.compile(r'\{(\d+)(?:(\+|-|\*|//)(\d+))?\}')


def _expand(template: str, match: 're.Match') -> str:

    def field(m: 're.Match') -> str:
        value = match.group(int(m.group(1)))
        if value is None:
            raise ValueError(
                f'Template {template!r}: group {m.group(1)} did not '
                f'participate in the match of {match.string!r}.')
        op = m.group(2)
        if op is None:
            return value
        a, b = int(value), int(m.group(3))
        return str({'+': a + b, '-': a - b, '*': a * b, '//': a // b}[op])

    return _FIELD.sub(field, template)


class KeyMap:
    """A compiled rule table.

    Args:
        rules (Sequence[Rule]): The rules, in priority order.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        compiled = []
        for pattern, template in self.rules:
            if not isinstance(pattern, str) or not isinstance(template, str):
                raise TypeError(
                    'A key rule is (pattern: str, template: str), got '
                    f'({pattern!r}, {template!r}).')
            regex = re.compile(pattern)
            for m in _FIELD.finditer(template):
                if int(m.group(1)) > regex.groups:
                    raise ValueError(
                        f'Rule ({pattern!r}, {template!r}) refers to group '
                        f'{m.group(1)}, but the pattern has {regex.groups}.')
            compiled.append((regex, template))
        self._compiled = compiled

    def rename(self, key: str) -> Optional[str]:
        """The new name of ``key``, or None if no rule matches it."""
        for regex, template in self._compiled:
            match = regex.match(key)
            if match:
                return _expand(template, match) + key[match.end():]
        return None

    def apply(self,
              state_dict: Mapping[str, object],
              keep_unmatched: bool = True) -> Tuple[Dict[str, object],
                                                    List[str]]:
        """Rename every key.

        Args:
            state_dict (Mapping): The source (values are shared, not copied).
            keep_unmatched (bool): Keep keys that match no rule under their
                own name (True) or leave them out (False).

        Returns:
            tuple[dict, list[str]]: The renamed dict and the source keys that
            matched no rule.

        Raises:
            KeyError: If two source keys map to the same name.
        """
        result, unmatched, origin = {}, [], {}
        for key, value in state_dict.items():
            new = self.rename(key)
            if new is None:
                unmatched.append(key)
                if not keep_unmatched:
                    continue
                new = key
            if new in result:
                raise KeyError(f'Checkpoint keys {origin[new]!r} and {key!r} '
                               f'both map to {new!r}.')
            origin[new] = key
            result[new] = value
        return result, unmatched


def rename_keys(state_dict: Mapping[str, object],
                rules: Sequence[Rule]) -> Dict[str, object]:
    """Rename ``state_dict``'s keys by ``rules``; unmatched keys are kept."""
    return KeyMap(rules).apply(state_dict)[0]
