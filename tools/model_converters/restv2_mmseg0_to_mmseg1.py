"""Convert an official ResTv2 UperNet checkpoint (wofmanaf/ResT
``semantic_segmentation``, mmseg 0.x) to an mmseg 1.x checkpoint for this
package's config.

Usage::

    python tools/model_converters/restv2_mmseg0_to_mmseg1.py \\
        upernet_restv2_tiny.pth configs/upernet_restv2_tiny.py \\
        checkpoints/upernet_restv2_tiny_mmseg1.pth

The backbone keys (``stem``, ``patch_k``, ``stagek``, ``norm_k``) are renamed
by :meth:`ResTV2.convert_checkpoint`; the UPerHead and auxiliary FCNHead keys
of mmseg 0.x keep their names in mmseg 1.x. The result is loaded into the
model built from CONFIG with ``strict=True`` before it is saved.
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
