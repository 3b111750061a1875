"""Reading checkpoint files from outside and loading them with a report.

One reader for every file that comes from outside (pretrained backbone
weights, official dense checkpoints given to the converters, ``reproduce``,
``tools/test.py``): :func:`load_checkpoint_file`. Local files are read with
``torch.load(..., weights_only=True)``: no code from a file is ever run.

Modules, by concern:

* :mod:`.reading`: :func:`load_checkpoint_file`, :func:`torch_load`
  (local files: torch, safetensors and numpy ``.npz``), ``map_location``
  checks;
* :mod:`.allow_list`: the non-tensor objects a file may hold
  (:func:`runner_safe_globals`, :func:`allowed_globals`) per torch version,
  and the error for the others;
* :mod:`.sniff`: what a file appears to be (:func:`describe_file`), for the
  error of an unreadable file;
* :mod:`.cache`: downloads, once, into a cache keyed by the full URL
  (:func:`download`);
* :mod:`.state_dict`: unwrapping containers and prefixes
  (:func:`extract_state_dict`), NaN / Inf checks;
* :mod:`.loading` and :mod:`.report`: loading into a module with a
  :class:`LoadReport` (:func:`load_state_dict_with_report`), and the
  messages of a refused load;
* :mod:`.errors`: :class:`CheckpointError`, :class:`RefusedCheckpointError`.

Every name is importable from ``mmmetaformer.checkpoint`` itself.
"""
from .allow_list import (_NUMPY_SCALAR_NAMES, HISTORY_BUFFER_METHODS,
                         _history_buffer_getattr, _numpy_multiarray, _refusal,
                         _torch_version, allowed_globals, runner_safe_globals)
from .cache import (_URL_HASH, URL_SCHEMES, _fetch, _sha256_file,
                    cached_file_problem, cached_path, checkpoint_cache_dir,
                    download, url_hash_prefix)
from .errors import CheckpointError, RefusedCheckpointError
from .loading import (_fit_all, _fits_as_reshape, fit_tensor,
                      load_state_dict_with_report)
from .reading import (_load_safetensors, check_map_location,
                      load_checkpoint_file, read_npz, torch_load)
from .report import (MAX_PARTIAL_FRACTION, MIN_LOADED_FRACTION, LoadReport,
                     _matching_keys, _prefix_candidates,
                     is_mmpretrain_classifier, nothing_loaded_message,
                     partial_load_message)
from .sniff import _LEGACY_TORCH_MAGIC, describe_file
from .state_dict import (_short, check_finite, describe_prefixes,
                         extract_state_dict, nonfinite_keys, split_prefix)

__all__ = [
    'CheckpointError', 'HISTORY_BUFFER_METHODS', 'LoadReport',
    'MAX_PARTIAL_FRACTION', 'MIN_LOADED_FRACTION', 'RefusedCheckpointError',
    'URL_SCHEMES', 'allowed_globals', 'cached_file_problem', 'cached_path',
    'check_finite', 'check_map_location', 'checkpoint_cache_dir',
    'describe_file', 'describe_prefixes', 'download', 'extract_state_dict',
    'fit_tensor', 'is_mmpretrain_classifier', 'load_checkpoint_file',
    'load_state_dict_with_report', 'nonfinite_keys', 'nothing_loaded_message',
    'partial_load_message', 'read_npz', 'runner_safe_globals', 'split_prefix',
    'torch_load', 'url_hash_prefix'
]
