"""`conformance bench`: how fast the suite and its helpers are on this machine, as `perf.*` observations.

The benchmarks are conformance cases of the area `perf` in `cases.py`. That file's name does not match pytest's
`test_*.py`, and the package is outside the project's `testpaths`, so neither `pytest` nor `conformance run`
collects it: only `conformance bench` names it, with this package's plugin (`-p conformance.bench.plugin`), and
the suite's plugin writes an ordinary report. `table.py` turns a report's perf observations into the figures
table that the command prints and the report's Markdown shows. The C baselines (`baselines.c`) are compiled at
run time by `conformance.native.build`.
"""

from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
CASES_FILE = BENCH_DIR / "cases.py"
PARALLEL_WORKERS = 2  # the suite is timed serial and with this many pytest-xdist workers
QUICK_DIVISOR = 20  # --quick: this many times fewer iterations, and one timed run per figure
