# Dataset locations: the ONE place every mmmetaformer config takes them from.
#
# Each root is an environment variable with a default (mmengine substitutes
# ``{{$VAR:default}}`` when the config is loaded):
#
#   MMMETAFORMER_COCO_ROOT  COCO 2017 root (default ``data/coco/``), holding
#                           ``annotations/instances_{train,val}2017.json``,
#                           ``train2017/`` and ``val2017/``.
#   MMMETAFORMER_ADE_ROOT   ADE20K root (default
#                           ``data/ade/ADEChallengeData2016/``), holding
#                           ``images/{training,validation}/`` and
#                           ``annotations/{training,validation}/``.
#   MMMETAFORMER_DEMO_ROOT  the synthetic demo data of
#                           ``tools/generate_demo_data.py`` (default
#                           ``data/demo/``; ``coco/`` and ``ade/`` inside).
#
# Example: ``MMMETAFORMER_COCO_ROOT=/datasets/coco/ python tools/train.py``.
# Relative paths are relative to the working directory. Keep the trailing
# slash (the configs append sub-paths to the root). Or edit the defaults here.
coco_root = '{{$MMMETAFORMER_COCO_ROOT:data/coco/}}'
ade_root = '{{$MMMETAFORMER_ADE_ROOT:data/ade/ADEChallengeData2016/}}'
demo_root = '{{$MMMETAFORMER_DEMO_ROOT:data/demo/}}'
