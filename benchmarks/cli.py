"""``python -m benchmarks [--quick] [--out DIR] [--scale N,N] [--full] [--reps N] [--no-cold]
[--only 1,2,...]``: run the benchmarks on the offline test web and write the report."""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
import traceback
from pathlib import Path

from . import ROOT, report
from .harness import Row, Settings, isolate_environment, load_config, machine, start_testweb, versions

NAMES = {1: "1 LLM", 2: "2 Embedding", 3: "3 Extraction", 4: "4 Fetch", 5: "5 Retrieval", 6: "6 End to end",
         7: "7 Answer quality", 8: "8 Native host",
         9: "9 Browser fetch", 10: "10 Images", 11: "11 Image tools"}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny, fast run (what the test runs)")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where benchmarks.md and the chart go (default: docs/)")
    parser.add_argument("--scale", help="passages in the store, comma-separated (default 10000,100000)")
    parser.add_argument("--full", action="store_true",
                        help="retrieval up to 1,000,000 passages (about an hour on 2 cores: a few hundred inserts/s)")
    parser.add_argument("--reps", type=int, help="interleaved repetitions per side")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold (new process) end-to-end runs")
    parser.add_argument("--only", help="benchmark numbers to run, e.g. 1,2 (the report keeps the others' rows "
                                       "from the last run that measured them)")
    parser.add_argument("--qa-limit", type=int, help="answer quality on the first N questions only")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    settings = Settings.quick_run() if args.quick else Settings()
    if args.full:
        settings.scales = [10_000, 100_000, 1_000_000]
    if args.scale:
        settings.scales = [int(n.replace("_", "")) for n in args.scale.split(",") if n.strip()]
    if args.reps:
        settings.reps = args.reps
    if args.qa_limit:
        settings.qa_limit = args.qa_limit
    if args.no_cold:
        settings.cold_runs = 0
    return settings


def benchmarks(web, config, settings, home: Path, charts: dict) -> dict:
    """Benchmark number -> a function returning its rows (run in this order: the store is last,
    as growing it to a million passages is the longest part)."""
    from . import browser, e2e, embedding, extraction, fetching, host, images, llm, ocr, quality, retrieval

    def end_to_end():
        rows, runs = e2e.run(web, settings, home / "e2e")
        charts.update(runs)
        return rows

    return {
        3: lambda: extraction.run(config, settings),
        4: lambda: fetching.run(config, settings, web),
        2: lambda: embedding.run(config, settings),
        1: lambda: llm.run(config, settings),
        6: end_to_end,
        7: lambda: quality.run(web, settings, home),
        8: lambda: host.run(web, settings, home / "host"),
        9: lambda: browser.run(config, settings, web),
        10: lambda: ocr.run(config, settings, web),
        11: lambda: images.run(config, settings),
        5: lambda: retrieval.run(config, settings, str(home / "scale")),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    settings = settings_from(args)
    wanted = {int(n) for n in args.only.split(",")} if args.only else set(NAMES)
    started = time.perf_counter()
    home = isolate_environment()
    described = machine()
    web = start_testweb()
    rows: list[Row] = []
    charts: dict = {}
    failed = []
    try:
        config = load_config()
        for number, work in benchmarks(web, config, settings, home, charts).items():
            if number not in wanted:
                continue
            print(f"-- {NAMES[number]} ...", file=sys.stderr, flush=True)
            begun = time.perf_counter()
            try:
                rows.extend(work())
                print(f"   {NAMES[number]}: {time.perf_counter() - begun:.1f} s", file=sys.stderr, flush=True)
            except Exception as error:  # one broken benchmark is reported; the others still run
                traceback.print_exc()
                failed.append(NAMES[number])
                rows.append(Row(NAMES[number], "did not run", None, None, "", note=f"{type(error).__name__}: {error}"[:300]))
    finally:
        web.stop()
        shutil.rmtree(home, ignore_errors=True)
    described["load_end"] = machine()["load"]
    rows.sort(key=lambda r: int(r.bench.split()[0]))
    command = "python -m benchmarks" + (" " + shlex.join(argv) if argv else "")
    text, chart = report.write(Path(args.out), rows, charts, described, versions(), command,
                               time.perf_counter() - started,
                               rerun={NAMES[n] for n in wanted} if args.only else None)
    print(report.summary(rows))
    print(f"wrote {text} and {chart}")
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def entry() -> None:
    sys.exit(main())
