"""Benchmarks of localsearch against the raw libraries it is built on, measured in the same run.

``python -m benchmarks`` (add ``--quick`` for a tiny run, ``--out DIR`` for where to write)
starts the offline test web in-process and writes ``DIR/benchmarks.md`` and
``DIR/benchmarks-latency.png``. Every figure is a ratio against the raw library measured in
the same process, runs of the two interleaved, medians taken, so a busy machine slows both
sides alike. Nothing heavy is imported until a benchmark runs.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
