"""Convert a PoolFormer Semantic FPN checkpoint trained with mmseg 0.x (the
official sail-sg/poolformer release, or OpenMMLab's re-training whose
backbone is mmcls's PoolFormer with the same key names) to an mmseg 1.x
checkpoint for this package's config.

Usage::

    python tools/model_converters/poolformer_mmseg0_to_mmseg1.py \\
        fpn_poolformer_s12_ade20k_40k.pth configs/semfpn_poolformer_s12.py \\
        checkpoints/semfpn_poolformer_s12_mmseg1.pth

The backbone keys are renamed by :meth:`PoolFormer.convert_checkpoint`; the
FPN and FPNHead keys of mmseg 0.x keep their names in mmseg 1.x. The result
is loaded into the model built from CONFIG with ``strict=True`` before it is
saved.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from conversion import (MMSEG0_HEAD_RULES, command_line,  # noqa: E402
                    convert_openmmlab)


def convert(state_dict, cfg, report):
    """mmseg 0.x segmentor keys -> the config's mmseg 1.x model keys."""
    return convert_openmmlab(state_dict, cfg, report, MMSEG0_HEAD_RULES)


def main(argv=None):
    return command_line(__doc__.splitlines()[0], convert, 'mmseg0', argv)


if __name__ == '__main__':
    sys.exit(main())
