"""Generate the synthetic demo data sets (COCO-format shapes detection with
instance masks, ADE20K-format shapes segmentation), deterministically and
without any download.

Example::

    python tools/generate_demo_data.py --out data/demo

Running it again with the same arguments keeps the existing data (see
``data/demo/demo_data.json``); ``--force`` regenerates.
"""
import argparse
import time

from mmmetaformer.demo import generate_demo_data


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='data/demo',
                        help='output directory (default: data/demo)')
    parser.add_argument('--num-train', type=int, default=400,
                        help='training images per data set (default: 400)')
    parser.add_argument('--num-val', type=int, default=100,
                        help='validation images per data set (default: 100)')
    parser.add_argument('--seed', type=int, default=0, help='base seed')
    parser.add_argument('--image-size', type=int, nargs=2, default=(96, 128),
                        metavar=('MIN', 'MAX'),
                        help='range of image width and height in pixels '
                        '(default: 96 128)')
    parser.add_argument('--max-objects', type=int, default=4,
                        help='maximum objects per image (default: 4)')
    parser.add_argument('--datasets', nargs='+', default=['coco', 'ade'],
                        choices=['coco', 'ade'],
                        help='which data sets to write (default: both)')
    parser.add_argument('--force', action='store_true',
                        help='regenerate even if the data exist')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    info = generate_demo_data(
        args.out, num_train=args.num_train, num_val=args.num_val,
        seed=args.seed, image_size=tuple(args.image_size),
        max_objects=args.max_objects, datasets=tuple(args.datasets),
        force=args.force)
    if info['generated']:
        print(f'Demo data written to {args.out} in '
              f'{time.time() - start:.1f} s: {args.num_train} train + '
              f'{args.num_val} val images per data set '
              f'({", ".join(info["datasets"])}).')
    else:
        print(f'Demo data in {args.out} are up to date (use --force to '
              'regenerate).')


if __name__ == '__main__':
    main()
