"""Convert an mmseg 0.x segmentor checkpoint (e.g. the official PoolFormer
Semantic FPN releases of sail-sg/poolformer or OpenMMLab's re-training, the
official ResTv2 UperNet releases of wofmanaf/ResT) to an mmseg 1.x checkpoint
for this package's config.

Usage::

    python tools/model_converters/mmseg0_to_mmseg1.py \\
        fpn_poolformer_s12_ade20k_40k.pth configs/semfpn_poolformer_s12.py \\
        checkpoints/semfpn_poolformer_s12_mmseg1.pth

Neck/head names (FPN, FPNHead, UPerHead, FCNHead) are the same in mmseg 1.x;
every key must match
:data:`mmmetaformer.converters.openmmlab.MMSEG0_HEAD_RULES` or the backbone
class's key map, or the conversion stops and names it.
The logic lives in :mod:`mmmetaformer.converters`.
"""
import sys

from mmmetaformer.converters.cli import command_line


def main(argv=None):
    return command_line('mmseg0', argv)


if __name__ == '__main__':
    sys.exit(main())
