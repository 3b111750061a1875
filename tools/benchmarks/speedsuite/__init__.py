"""The speed suite behind ``tools/benchmarks/speed.py``, by concern.

* :mod:`.cases`: the cases (one backbone of this package and its peer),
  the modes and precisions, input sizes;
* :mod:`.timing`: agreement of the outputs, one step, interleaved timing,
  profiles, graph breaks, one case at one size (:func:`.timing.bench_case`);
* :mod:`.memory`: the memory of one training step (peak, RSS growth, saved
  activations), each setting in a fresh process;
* :mod:`.report`: ratios, the markdown tables, the chart, the README block,
  the console lines, reading stored results back;
* :mod:`.cli`: the command line (options, what runs, the files written).

A benchmark tool, not part of the package: the peers need timm, installed
outside the virtual environment (``tools/benchmarks/setup_bench.sh``), and
the import stand-in in ``tools/benchmarks/_stubs``. Importing a module here
imports neither torch nor timm; the functions import what they run.
"""
