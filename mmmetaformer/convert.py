"""Dense-checkpoint conversion (mmdet 2.x, mmseg 0.x, detectron2 ->
mmdet 3.x / mmseg 1.x), kept as the import path it has always been.

The code lives in :mod:`mmmetaformer.converters` (one module per concern
and source format) and the checks before a Runner loads a checkpoint in
:mod:`mmmetaformer.runner.load_from`; every name importable from
``mmmetaformer.convert`` before the split still imports from here.
"""
from mmmetaformer.checkpoint import (  # noqa: F401
    MIN_LOADED_FRACTION, check_finite, describe_prefixes, extract_state_dict,
    fit_tensor, is_mmpretrain_classifier, load_checkpoint_file, split_prefix)
from mmmetaformer.converters.backbone import (  # noqa: F401
    backbone_class, convert_backbone, families)
from mmmetaformer.converters.cli import command_line  # noqa: F401
from mmmetaformer.converters.common import (  # noqa: F401
    _CONV, _CONV_BN, _PARAM, EXPECTED_MISSING, ConversionError,
    ConversionReport, StateDict, Tensor, detect_source_format,
    missing_and_unexpected, read_source, rename_by_rules)
from mmmetaformer.converters.detectron2 import (  # noqa: F401
    D2_ASPECT_RATIOS, D2_HEAD_RULES, D2_IGNORED, D2_RETINANET_SIZES,
    _check_retinanet_anchors, _pixel_warnings, anchor_permutation,
    convert_detectron2, d2_neck_rules, permute_anchor_channels)
from mmmetaformer.converters.model import (  # noqa: F401
    build_model, fit_and_load, load_config, unwrap_model)
from mmmetaformer.converters.openmmlab import (  # noqa: F401
    _FPN, MMDET2_HEAD_RULES, MMSEG0_HEAD_RULES, convert_openmmlab)
from mmmetaformer.converters.run import (  # noqa: F401
    CONVERTERS, dataset_meta_from, run_conversion, save_checkpoint)
from mmmetaformer.converters.scripts import (  # noqa: F401
    CONVERTER_SCRIPTS, SOURCE_DESCRIPTIONS)
from mmmetaformer.identify import describe, identify  # noqa: F401
from mmmetaformer.keymap import KeyMap, Rule  # noqa: F401
from mmmetaformer.runner.load_from import (  # noqa: F401
    _listing, _refuse_unconverted, _target_scope_format, _unconverted_message,
    check_checkpoint_fits, check_load_from, classifier_message)
