"""mmdet 2.x detector and mmseg 0.x segmentor checkpoints (source formats
``mmdet2`` and ``mmseg0``): one converter, :func:`convert_openmmlab`, with
one rule table per format for the neck and head keys."""
from typing import List, Optional

from mmmetaformer.checkpoint import split_prefix
from mmmetaformer.keymap import Rule
from .backbone import convert_backbone
from .common import (_CONV, _CONV_BN, _PARAM, ConversionReport, StateDict,
                     rename_by_rules)

# Neck and head keys of mmdet 2.19 RetinaNet / Mask R-CNN (FPN, RetinaHead,
# RPNHead, Shared2FCBBoxHead, FCNMaskHead) and mmseg 0.x FPN / FPNHead /
# UPerHead / FCNHead. mmdet 3.x and mmseg 1.x kept these module names, so the
# rules keep the keys ('{0}'); listing them makes any other key (a different
# head, a different framework) stop the conversion instead of passing
# unnoticed.
_FPN = (rf'neck\.(lateral_convs|fpn_convs)\.\d+{_CONV}', '{0}')
MMDET2_HEAD_RULES: List[Rule] = [
    _FPN,
    (rf'bbox_head\.(cls_convs|reg_convs)\.\d+{_CONV}', '{0}'),
    (rf'bbox_head\.(retina_cls|retina_reg){_PARAM}', '{0}'),
    (rf'rpn_head\.(rpn_conv|rpn_cls|rpn_reg){_PARAM}', '{0}'),
    (rf'roi_head\.bbox_head\.(shared_fcs\.\d+|fc_cls|fc_reg){_PARAM}', '{0}'),
    (rf'roi_head\.mask_head\.convs\.\d+{_CONV}', '{0}'),
    (rf'roi_head\.mask_head\.(upsample|conv_logits){_PARAM}', '{0}'),
]
MMSEG0_HEAD_RULES: List[Rule] = [
    _FPN,
    (r'(decode_head|auxiliary_head)\.(scale_heads\.\d+\.\d+|psp_modules\.\d+'
     r'\.1|bottleneck|lateral_convs\.\d+|fpn_convs\.\d+|fpn_bottleneck|'
     rf'convs\.\d+|conv_cat){_CONV_BN}', '{0}'),
    (rf'(decode_head|auxiliary_head)\.conv_seg{_PARAM}', '{0}'),
]


def convert_openmmlab(state_dict: StateDict, cfg, report: ConversionReport,
                      family: Optional[str] = None) -> StateDict:
    """An mmdet 2.x / mmseg 0.x checkpoint -> the config's key names.

    ``backbone.*`` goes through the config's backbone class converter
    (official names such as PoolFormer's ``network.*``, or this package's
    names); neck and head keys through :data:`MMDET2_HEAD_RULES` /
    :data:`MMSEG0_HEAD_RULES`.
    """
    rules = MMDET2_HEAD_RULES if report.source_format == 'mmdet2' else \
        MMSEG0_HEAD_RULES
    result = convert_backbone(state_dict, cfg, report, 'backbone.', family)
    _, rest = split_prefix(state_dict, 'backbone.')
    heads, report.ignored = rename_by_rules(rest, rules,
                                            what=report.source_format)
    result.update(heads)
    return result
