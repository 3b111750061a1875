"""Convert an official PoolFormer detection checkpoint (sail-sg/poolformer,
mmdet 2.19: RetinaNet or Mask R-CNN) to an mmdet 3.x checkpoint for this
package's config.

Usage::

    python tools/model_converters/poolformer_mmdet2_to_mmdet3.py \\
        retinanet_poolformer_s12.pth configs/retinanet_poolformer_s12.py \\
        checkpoints/retinanet_poolformer_s12_mmdet3.pth

What changes: the backbone keys ``backbone.patch_embed/network/norm{0,2,4,6}``
are renamed by :meth:`PoolFormer.convert_checkpoint` (RetinaNet checkpoints,
trained with ``FORK_LAST3=1``, have no ``norm0``: the RetinaNet configs return
stages 1-3 only, so ``norm2/4/6`` become ``norm1/2/3``); the FPN, RetinaHead,
RPN and RoI-head keys of mmdet 2.19 keep their names in mmdet 3.x. The result
is loaded into the model built from CONFIG with ``strict=True`` before it is
saved. Any backbone of this package with an official-key converter works the
same way (the backbone class is taken from the config).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from conversion import (MMDET2_HEAD_RULES, command_line,  # noqa: E402
                    convert_openmmlab)


def convert(state_dict, cfg, report):
    """mmdet 2.x detector keys -> the config's mmdet 3.x model keys."""
    return convert_openmmlab(state_dict, cfg, report, MMDET2_HEAD_RULES)


def main(argv=None):
    return command_line(__doc__.splitlines()[0], convert, 'mmdet2', argv)


if __name__ == '__main__':
    sys.exit(main())
