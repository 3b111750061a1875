"""Convert an mmdet 2.x detector checkpoint (e.g. the official PoolFormer
RetinaNet / Mask R-CNN releases of sail-sg/poolformer, mmdet 2.19) to an
mmdet 3.x checkpoint for this package's config.

Usage::

    python tools/model_converters/mmdet2_to_mmdet3.py \\
        retinanet_poolformer_s12.pth configs/retinanet_poolformer_s12.py \\
        checkpoints/retinanet_poolformer_s12_mmdet3.pth

PoolFormer RetinaNet checkpoints, trained with ``FORK_LAST3=1``, have no
``norm0``: the RetinaNet configs return stages 1-3 only, so ``norm2/4/6``
become ``norm1/2/3``.

Backbone keys: renamed by the config's backbone class (its official key map;
``--family`` checks the class). Neck and head keys:
:data:`mmmetaformer.converters.openmmlab.MMDET2_HEAD_RULES` (mmdet 2.19's
FPN, RetinaHead, RPN and RoI heads keep their names in mmdet 3.x).
The logic lives in :mod:`mmmetaformer.converters`.
"""
import sys

from mmmetaformer.converters.cli import command_line


def main(argv=None):
    return command_line('mmdet2', argv)


if __name__ == '__main__':
    sys.exit(main())
