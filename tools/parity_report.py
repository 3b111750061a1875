"""Print the parity of every backbone with the official reference outputs.

For each variant of ``shared/reference``: fill the official state_dict by the
reference rule, save it in the official release's container, load it through
the user path (``init_cfg=dict(type='Pretrained', ...)`` and the family's
official-key converter), run float64 on the stored inputs, and print the
worst error (relative sum / sum of squares, absolute slices) per variant.

Usage: python tools/parity_report.py [VARIANT ...] [--reference DIR]
"""
import argparse
import os.path as osp
import sys
import tempfile
import time

import torch

import mmmetaformer  # noqa: F401  (registers the backbones)
from mmmetaformer.registry import MODELS
from mmmetaformer.testing import parity


def run(variant: str, ref_dir: str, tmp_dir: str) -> dict:
    name, arch, kwargs, container = parity.REFERENCE_VARIANTS[variant]
    state_dict = parity.official_dense_state_dict(
        variant, ref_dir, with_imagenet_only=True)
    path = osp.join(tmp_dir, f'{variant}.pth')
    torch.save({container: state_dict} if container else state_dict, path)
    taps = kwargs if isinstance(kwargs, list) else [kwargs]
    results, clean = [], True
    start = time.perf_counter()
    for index, tap_kwargs in enumerate(taps):  # one model per tap if a list
        model = MODELS.build(
            dict(type=name, arch=arch,
                 init_cfg=dict(type='Pretrained', checkpoint=path),
                 **tap_kwargs))
        model.double()
        model.init_weights()
        clean = clean and model.load_pretrained(path).clean
        results += parity.parity_errors(
            model, parity.load_reference(variant, ref_dir),
            ref_outputs=[index] if len(taps) > 1 else None)
    return dict(
        variant=variant, backbone=f'{name}({arch!r})',
        maps=len(results), worst=parity.worst_error(results),
        clean=clean, seconds=time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('variants', nargs='*',
                        default=list(parity.REFERENCE_VARIANTS))
    parser.add_argument('--reference', default=parity.reference_dir())
    args = parser.parse_args()
    if not args.reference:
        sys.exit('shared/reference not found: pass --reference DIR')
    rows = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        for variant in args.variants:
            rows.append(run(variant, args.reference, tmp_dir))
    print('\n| variant | backbone | maps | worst error | report clean |')
    print('|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['variant']} | `{r['backbone']}` | {r['maps']} | "
              f"{r['worst']:.1e} | {'yes' if r['clean'] else 'NO'} |")
    failed = [r for r in rows if not (r['worst'] <= 1e-10 and r['clean'])]
    print(f'\n{len(rows) - len(failed)} of {len(rows)} variants within '
          '1e-10 with a clean loading report.')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
