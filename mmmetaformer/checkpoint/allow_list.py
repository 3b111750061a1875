"""The allow-list of ``torch.load(weights_only=True)``: the non-tensor
objects a checkpoint from outside may hold, and the error for the others.

The only non-tensor objects allowed are the ones mmengine's Runner and
single-GPU mmdet 2.x / mmseg 0.x runs store next to the weights
(:func:`runner_safe_globals`): ``HistoryBuffer`` (with a ``getattr`` that
answers only its four statistics methods), numpy arrays, scalars and
dtypes (under numpy 1.x ``numpy.core`` and numpy 2.x ``numpy._core``
names) and ``argparse.Namespace`` (DeiT-style training scripts).

torch versions: :func:`allowed_globals` uses
``torch.serialization.safe_globals`` (torch >= 2.5) or ``add_safe_globals``
(2.4, restored afterwards). Entries that map a name written by another
numpy version, and ``builtins.getattr``, need torch >= 2.6
(``(object, 'module.name')`` entries); older versions allow the objects
under their own names only. torch < 2.4 has no allow-list API: files that
hold nothing but tensors and plain containers load, files with numpy or
mmengine objects are refused with an error that says so (load them once
with torch >= 2.6 and save their ``state_dict``).
"""
import argparse
import contextlib
import importlib
import pickle
import re
from typing import Callable, Iterator, List, Tuple, Union

import torch

from .errors import RefusedCheckpointError

#: ``HistoryBuffer`` methods a pickled ``HistoryBuffer`` references (its
#: ``statistics_methods``, looked up through ``builtins.getattr``).
HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')

_NUMPY_SCALAR_NAMES = ('bool_', 'int8', 'int16', 'int32', 'int64', 'uint8',
                       'uint16', 'uint32', 'uint64', 'float16', 'float32',
                       'float64')


def _torch_version() -> Tuple[int, int]:
    match = re.match(r'(\d+)\.(\d+)', torch.__version__)
    return int(match.group(1)), int(match.group(2))


def _history_buffer_getattr(owner, name):
    """Stand-in for ``builtins.getattr`` while unpickling a checkpoint.

    A pickled ``HistoryBuffer`` stores its statistics methods as
    ``getattr(HistoryBuffer, 'min')`` etc. Allowing the real ``getattr``
    would let a file reach any attribute of any allowed object, so only
    those lookups are answered.

    Args:
        owner: The object the pickle asks an attribute of.
        name (str): The attribute name.

    Returns:
        The ``HistoryBuffer`` method.

    Raises:
        pickle.UnpicklingError: For any other lookup.
    """
    from mmengine.logging import HistoryBuffer
    if owner is HistoryBuffer and name in HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Refusing getattr({owner!r}, {name!r}) while loading a checkpoint '
        'with weights_only=True: only HistoryBuffer.'
        f'{{{",".join(HISTORY_BUFFER_METHODS)}}} are allowed.')


def _numpy_multiarray():
    """numpy's ``multiarray`` module, imported by the path this numpy has
    (``numpy._core`` from 2.0 on, ``numpy.core`` before)."""
    import numpy as np
    major = int(np.__version__.split('.')[0])
    return importlib.import_module(
        'numpy._core.multiarray' if major >= 2 else 'numpy.core.multiarray')


def runner_safe_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The non-tensor globals allowed in checkpoints from outside.

    Exactly what mmengine's Runner (``HistoryBuffer`` of the message hub,
    numpy arrays, scalars and dtypes in ``meta``/``message_hub``) and
    single-GPU mmdet 2.x / mmseg 0.x runs (numpy seed and scalars in
    ``meta``) write, plus ``argparse.Namespace`` (DeiT-style ``args``). Found
    with ``torch.serialization.get_unsafe_globals_in_checkpoint`` on such
    files. numpy's ``_reconstruct``/``scalar`` are listed under both the
    numpy 1.x (``numpy.core.multiarray``) and 2.x (``numpy._core.
    multiarray``) names, so files written by either load under either;
    ``builtins.getattr`` maps to a function that answers only
    ``HistoryBuffer``'s statistics methods.

    Returns:
        list: Objects and ``(object, 'module.name')`` tuples, the format of
        ``torch.serialization.safe_globals`` (torch >= 2.6; see
        :func:`allowed_globals` for older versions).
    """
    import numpy as np
    from mmengine.logging import HistoryBuffer

    multiarray = _numpy_multiarray()
    entries: List[Union[Callable, Tuple[Callable, str]]] = [
        argparse.Namespace, HistoryBuffer, np.ndarray, np.dtype
    ]
    entries += [type(np.dtype(getattr(np, n))) for n in _NUMPY_SCALAR_NAMES]
    for name in ('_reconstruct', 'scalar'):
        obj = getattr(multiarray, name)
        entries.append(obj)
        for package in ('numpy.core', 'numpy._core'):
            entries.append((obj, f'{package}.multiarray.{name}'))
    entries.append((_history_buffer_getattr, 'builtins.getattr'))
    return entries


@contextlib.contextmanager
def allowed_globals() -> Iterator[None]:
    """Allow :func:`runner_safe_globals` for ``torch.load(weights_only=True)``
    inside the ``with`` block, and nothing after it.

    torch >= 2.6: all entries; 2.4 and 2.5: the objects under their own
    names (no name mapping, no ``getattr``); < 2.4: nothing (no API).
    """
    entries = runner_safe_globals()
    if _torch_version() < (2, 6):
        entries = [e for e in entries if not isinstance(e, tuple)]
    serialization = torch.serialization
    if hasattr(serialization, 'safe_globals'):
        with serialization.safe_globals(entries):
            yield
    elif hasattr(serialization, 'add_safe_globals'):
        before = list(serialization.get_safe_globals())
        serialization.add_safe_globals(entries)
        try:
            yield
        finally:
            serialization.clear_safe_globals()
            serialization.add_safe_globals(before)
    else:
        yield


# ------------------------------------------------------------- the refusal
def _refusal(exc: pickle.UnpicklingError,
             source: str) -> RefusedCheckpointError:
    """The error for a file ``torch.load(weights_only=True)`` refused:
    which object, and what to do on torch < 2.6."""
    detail = str(exc).strip().splitlines()
    refused = next((line for line in detail if 'global' in line.lower()),
                   detail[-1] if detail else '')
    hint = ''
    if _torch_version() < (2, 6):
        hint = (f' torch {torch.__version__} cannot allow the objects '
                'that mmengine Runner / numpy-1.x checkpoints hold (the '
                'allow-list needs torch >= 2.6): load the file once with '
                'torch >= 2.6 and save its state_dict.')
    return RefusedCheckpointError(
        f'Refused to read {source} with torch.load(weights_only=True): '
        f'it holds objects other than tensors and the allowed metadata '
        f'types ({refused.strip()}). Files from outside are never '
        f'unpickled with code execution.{hint}')
