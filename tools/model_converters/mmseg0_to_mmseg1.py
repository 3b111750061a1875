"""Convert an mmseg 0.x segmentor checkpoint (e.g. the official PoolFormer
Semantic FPN releases of sail-sg/poolformer or OpenMMLab's re-training, the
official ResTv2 UperNet releases of wofmanaf/ResT) to an mmseg 1.x checkpoint
for this package's config.

Usage::

    python tools/model_converters/mmseg0_to_mmseg1.py \\
        fpn_poolformer_s12_ade20k_40k.pth configs/semfpn_poolformer_s12.py \\
        checkpoints/semfpn_poolformer_s12_mmseg1.pth

The backbone keys are renamed by the config's backbone class
(``model.backbone.type``; ``--family`` checks it), with the family's official
key map (:meth:`convert_checkpoint`): e.g. PoolFormer's
``backbone.patch_embed/network/norm{0,2,4,6}``, ResTv2's ``stem``, ``patch_k``,
``stagek``, ``norm_k``. The neck and head keys of mmseg 0.x (FPN, FPNHead,
UPerHead, FCNHead) keep their names in mmseg 1.x; every key must be claimed by
a rule (:data:`mmmetaformer.convert.MMSEG0_HEAD_RULES`), otherwise the
conversion stops naming it. The result is loaded into the model built from
CONFIG with ``strict=True`` before it is saved (``--allow-partial``: reported
instead).
The logic lives in :mod:`mmmetaformer.convert`.
"""
import sys

from mmmetaformer.convert import command_line


def main(argv=None):
    return command_line('mmseg0', argv)


if __name__ == '__main__':
    sys.exit(main())
