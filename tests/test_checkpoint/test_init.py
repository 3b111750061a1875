"""mmmetaformer.checkpoint, a package split by concern: every name the
single module ``mmmetaformer/checkpoint.py`` had (before issue 19) still
imports from ``mmmetaformer.checkpoint`` (no import cycle: tests/test_structure.py)."""
import mmmetaformer.checkpoint as checkpoint

#: The names of the module before the split (its own definitions; typing
#: helpers and the standard library left out).
NAMES_BEFORE_THE_SPLIT = [
    'CheckpointError', 'HISTORY_BUFFER_METHODS', 'LoadReport',
    'MAX_PARTIAL_FRACTION', 'MIN_LOADED_FRACTION',
    'RefusedCheckpointError', 'URL_SCHEMES', '_LEGACY_TORCH_MAGIC',
    '_NUMPY_SCALAR_NAMES', '_URL_HASH', '_fetch', '_fit_all',
    '_fits_as_reshape', '_history_buffer_getattr', '_load_safetensors',
    '_matching_keys', '_numpy_multiarray', '_prefix_candidates',
    '_refusal', '_sha256_file', '_short', '_torch_version',
    'allowed_globals', 'cached_file_problem', 'cached_path',
    'check_finite', 'check_map_location', 'checkpoint_cache_dir',
    'describe_file', 'describe_prefixes', 'download', 'extract_state_dict',
    'fit_tensor', 'is_mmpretrain_classifier', 'load_checkpoint_file',
    'load_state_dict_with_report', 'nonfinite_keys',
    'nothing_loaded_message', 'partial_load_message', 'read_npz',
    'runner_safe_globals', 'split_prefix', 'torch_load', 'url_hash_prefix'
]


def test_every_name_still_imports():
    missing = [n for n in NAMES_BEFORE_THE_SPLIT if not hasattr(checkpoint, n)]
    assert not missing
