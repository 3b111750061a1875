"""mmmetaformer.convert, kept as an import path: every name the module had
before issue 19 split it (into :mod:`mmmetaformer.converters` and
:mod:`mmmetaformer.runner.load_from`) still imports from it (no import cycle:
tests/test_structure.py). The converters'
tests are in tests/test_converters, the load_from checks' in
tests/test_runner."""
from mmmetaformer import convert

#: The names of the module before the split (its own definitions and what
#: it imported from this package; typing helpers and the standard library
#: left out).
NAMES_BEFORE_THE_SPLIT = [
    'CONVERTERS', 'CONVERTER_SCRIPTS', 'ConversionError',
    'ConversionReport', 'D2_ASPECT_RATIOS', 'D2_HEAD_RULES', 'D2_IGNORED',
    'D2_RETINANET_SIZES', 'EXPECTED_MISSING', 'KeyMap',
    'MIN_LOADED_FRACTION', 'MMDET2_HEAD_RULES', 'MMSEG0_HEAD_RULES',
    'Rule', 'SOURCE_DESCRIPTIONS', 'StateDict', 'Tensor', '_CONV',
    '_CONV_BN', '_FPN', '_PARAM', '_check_retinanet_anchors', '_listing',
    '_pixel_warnings', '_refuse_unconverted', '_target_scope_format',
    '_unconverted_message', 'anchor_permutation', 'backbone_class',
    'build_model', 'check_checkpoint_fits', 'check_finite',
    'check_load_from', 'classifier_message', 'command_line',
    'convert_backbone', 'convert_detectron2', 'convert_openmmlab',
    'd2_neck_rules', 'dataset_meta_from', 'describe', 'describe_prefixes',
    'detect_source_format', 'extract_state_dict', 'families',
    'fit_and_load', 'fit_tensor', 'identify', 'is_mmpretrain_classifier',
    'load_checkpoint_file', 'load_config', 'permute_anchor_channels',
    'read_source', 'rename_by_rules', 'run_conversion', 'save_checkpoint',
    'split_prefix', 'unwrap_model'
]


def test_every_name_still_imports():
    missing = [n for n in NAMES_BEFORE_THE_SPLIT if not hasattr(convert, n)]
    assert not missing
