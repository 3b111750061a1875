"""Speed suite: every backbone family against its peer, same weights, same run.

The command line (``python tools/benchmarks/speed.py --help`` lists every
option with its unit, default and choices); the suite itself is the
``speedsuite`` package beside this file:

* ``speedsuite.cases``: the cases (one arch per family and its peer,
  ``peers.py``), modes, precisions, sizes;
* ``speedsuite.timing``: output agreement, one step, interleaved timing,
  profiles, graph breaks, one case at one size (``bench_case``);
* ``speedsuite.memory``: the memory of one training step, with and without
  ``with_cp``, each in a fresh process (this script with ``--memory-child``);
* ``speedsuite.report`` and ``speedsuite.chart``: the markdown tables, the
  README block, the chart (also redrawn from stored results:
  ``--chart-from``);
* ``speedsuite.cli``: options, the run, the files written.

The names other tools and the tests use (``bench_case``, ``bench_memory``,
``step_memory``, ``markdown_tables``, ...) are importable from here as
before. Timings are not tests: nothing here asserts a speed.
"""
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HERE = osp.dirname(osp.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from speedsuite.cases import (CASE_NAMES, CASES, DEFAULT_PRECISIONS,  # noqa
                              MODES, PRECISIONS, Case, parse_size,
                              select_cases, size_label)
from speedsuite.chart import (chart_panels, load_rows,  # noqa: E402,F401
                              render_chart, rows_from_markdown, speedup_rows,
                              write_chart)
from speedsuite.cli import (build_parser, main, parse_args,  # noqa: E402,F401
                            repository_of, write_outputs)
from speedsuite.memory import (CUDA_LABEL, MALLINFO2_LABEL,  # noqa: E402,F401
                               RSS_LABEL, bench_memory, malloc_in_use_reader,
                               memory_child, saved_activation_bytes,
                               step_memory)
from speedsuite.report import (CHART_IN_REPO, README_END,  # noqa: E402,F401
                               README_START, RESULTS_IN_REPO,
                               compiled_speedup,
                               markdown_tables, print_result, speedups,
                               update_readme)
from speedsuite.timing import (Variant, autocast, bench_case,  # noqa: E402,F401
                               cpu_model, environment, graph_breaks,
                               load_average, make_step, profile_table, ratio,
                               rel_error, run_outputs, summarize,
                               time_interleaved)

if __name__ == '__main__':
    sys.exit(main())
