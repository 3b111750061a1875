"""The model zoo: generate the tables of ``docs/model_zoo.md`` from
``configs/metafiles/*.yml`` (format and logic: :mod:`mmmetaformer.zoo`).

Usage::

    python tools/model_zoo.py            # rewrite the tables in docs/model_zoo.md
    python tools/model_zoo.py --check    # exit 1 if docs/model_zoo.md is out of date
    python tools/model_zoo.py --list     # one line per row: name, metrics
"""
import argparse
import sys

from mmmetaformer import zoo


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description='Generate the model-zoo tables of docs/model_zoo.md '
        'from configs/metafiles/*.yml')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        '--check',
        action='store_true',
        help='exit 1 if the tables of the page differ from the metafiles')
    mode.add_argument(
        '--list', action='store_true', help='print one line per row')
    parser.add_argument(
        '--page',
        default=zoo.ZOO_PAGE,
        help='the Markdown page with the model-zoo markers (default: '
        'docs/model_zoo.md); links are written relative to its directory')
    parser.add_argument(
        '--metafiles', default=zoo.METAFILE_DIR, help='metafile directory')
    args = parser.parse_args(argv)
    try:
        if args.list:
            print('\n'.join(zoo.list_rows(zoo.load_zoo(args.metafiles))))
            return 0
        return zoo.update_page(args.page, args.metafiles, args.check)
    except zoo.ZooError as exc:
        parser.exit(1, f'model_zoo.py: {exc}\n')


if __name__ == '__main__':
    sys.exit(main())
