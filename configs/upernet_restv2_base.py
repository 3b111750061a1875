# UperNet ResTv2-Base, 160k ADE20K, published recipe
# (semantic_segmentation/configs/ResTv2/upernet_restv2_base_512_160k_ade20k.py;
# published mIoU 49.6, multi-scale + flip). Recipe and its port:
# ``_base_/upernet_160k_ade20k_restv2.py``. drop_path_rate 0.3 as the official
# config.
# ImageNet weights: the official ResTv2 releases are on Baidu only (access
# code "rest"; wofmanaf/ResT README), no direct URL exists. Put the file
# (``{'model': ...}`` as released) at
# $MMMETAFORMER_CHECKPOINTS/restv2_base_224.pth (default ./checkpoints/);
# the backbone converts the official keys when loading.
_base_ = './_base_/upernet_160k_ade20k_restv2.py'

model = dict(
    backbone=dict(
        type='ResTV2',
        arch='base',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='{{$MMMETAFORMER_CHECKPOINTS:checkpoints}}'
            '/restv2_base_224.pth')))

# ResTv2-B: AdamW lr 1.5e-4, weight decay 0.05, stage-wise lr decay 0.9.
# The official config names mmseg's LearningRateDecayOptimizerConstructor with
# decay_type 'stage_wise' and num_layers = the depths, a constructor missing
# from the repository (mmseg's own one recognises ConvNeXt only). Here:
# mmmetaformer's LayerDecayOptimWrapperConstructor, stage-wise as in
# ConvNeXt's: lr x 0.9 ** (5 - id) with id 0 for the stem, i + 1 for stage i,
# 5 for the output norms and the heads; no weight decay on 1-D parameters.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1.5e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise'))
