"""The benchmark code runs (on a tiny input) and writes its report; the figures are not checked:
benchmarks are not timed tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `benchmarks` is a folder of the repository, not an installed package

PNG = b"\x89PNG\r\n\x1a\n"


def result_rows(markdown: str) -> list[list[str]]:
    """Cells of the rows of the results table (the ones whose first cell is a benchmark)."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in markdown.splitlines() if re.match(r"\|\s*\d+ \w", line)]


def is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


def test_rows_compute_ratios_and_verdicts():
    from benchmarks.harness import Row, Target, paired_ratio

    faster = Row("1 LLM", "prefill tokens/s", 99.0, 100.0, "tok/s", Target("ratio", ">=", 0.95))
    assert faster.ratio == pytest.approx(0.99) and faster.passed is True
    slow = Row("5 Retrieval", "top-10 query", 25.0, 5.0, "ms", Target("figure", "<=", 20, "ms"))
    assert slow.ratio == pytest.approx(5.0) and slow.passed is False
    assert Row("6 End to end", "cold", None, None, "s", Target("figure", "<=", 1, "s")).passed is None
    assert paired_ratio([2.0, 4.0, 9.0], [1.0, 4.0, 3.0]) == pytest.approx(2.0)
    assert str(Target("ratio", "<=", 2.0)) == "ratio ≤ 2" and str(Target("figure", "<=", 20, "ms")) == "≤ 20 ms"


def test_interleave_alternates_who_goes_first():
    from benchmarks.harness import interleave

    calls = []
    runs = interleave({"ours": lambda: calls.append("ours") or 1, "raw": lambda: calls.append("raw") or 2}, 3)
    assert runs == {"ours": [1, 1, 1], "raw": [2, 2, 2]}
    assert calls == ["ours", "raw", "ours", "raw", "raw", "ours", "ours", "raw"]  # warm-up, then alternating


def test_the_report_has_the_table_and_a_png_chart(tmp_path):
    from benchmarks.harness import Row, Target
    from benchmarks.report import write

    rows = [Row("3 Extraction", "pages/s", 90.0, 100.0, "pages/s", Target("ratio", ">=", 0.9))]
    run = {"asked": 0.5, "ends": {"retrieve": 2.0}, "extractive_answer": 2.2, "model_first_token": 0.4,
           "done": 4.0, "timings": {"load": 1.0, "fetch": 0.3, "retrieve": 0.2, "answer": 1.5, "verify": 0.1}}
    text, chart = write(tmp_path, rows, {"cold": run, "warm": run}, {"cpu": "cpu", "cores": "2", "ram": "1 GB",
                        "os": "os", "load": "0"}, {"python": "3"}, "python -m benchmarks", 1.0)
    assert result_rows(text.read_text())[0][:5] == ["3 Extraction", "pages/s", "90.0 pages/s", "100 pages/s", "0.90"]
    assert chart.read_bytes().startswith(PNG)

    # A section the benchmarks do not write (the answer-quality figures) survives a re-run.
    text.write_text(text.read_text().replace("## Results", "## Answer quality\n\nBy hand.\n\n## Results"))
    write(tmp_path, rows, {}, {"cpu": "cpu", "cores": "2", "ram": "1 GB", "os": "os", "load": "0"}, {"python": "3"},
          "python -m benchmarks", 1.0)
    rewritten = text.read_text()
    assert rewritten.count("## Answer quality\n\nBy hand.") == 1 and rewritten.count("## Results") == 1
    # That run did not measure end to end: the earlier latency figures stay.
    assert "end to end was not measured" not in rewritten.lower() and "| **total** | 4.00 |" in rewritten


def test_a_run_of_some_benchmarks_keeps_the_other_rows(tmp_path):
    from benchmarks.harness import Row, Target
    from benchmarks.report import write

    machine = {"cpu": "cpu", "cores": "2", "ram": "1 GB", "os": "os", "load": "0"}
    run = {"asked": 0.0, "ends": {}, "done": 1.0, "timings": {"fetch": 0.5}}
    first = [Row("5 Retrieval", "top-10 query at 1,000,000 passages", 9.0, 8.0, "ms", Target("figure", "<=", 20, "ms")),
             Row("6 End to end", "warm: prompt tokens", 500.0, 490.0, "tokens")]
    write(tmp_path, first, {"warm": run}, machine, {"python": "3"}, "python -m benchmarks --full", 60.0,
          when="2026-11-25 02:00:00 UTC")
    later = [Row("6 End to end", "warm: prompt tokens", 450.0, 490.0, "tokens")]
    text, _ = write(tmp_path, later, {}, machine, {"python": "3"}, "python -m benchmarks --only 6", 6.0,
                    rerun={"6 End to end"}, when="2026-11-25 03:00:00 UTC")
    rows = result_rows(text.read_text())
    assert [row[:3] for row in rows] == [["5 Retrieval", "top-10 query at 1,000,000 passages", "9.00 ms"],
                                          ["6 End to end", "warm: prompt tokens", "450 tokens"]]
    assert rows[0][5:7] == ["≤ 20 ms", "pass"] and "from the run of" in rows[0][7]
    assert "from the run of" not in rows[1][7]
    assert "2026-11-25 02:00:00 UTC: `python -m benchmarks --full`" in text.read_text()  # the earlier run is named

    # A run without --full measures retrieval again at small scales only: the 1M figure stays.
    small = [Row("5 Retrieval", "top-10 query at 10,000 passages", 3.0, 3.1, "ms"),
             Row("5 Retrieval", "top-10 query at 1,000,000 passages", None, None, "ms",
                 Target("figure", "<=", 20, "ms"), note="not measured in this run")]
    text, _ = write(tmp_path, small, {}, machine, {"python": "3"}, "python -m benchmarks", 6.0,
                    when="2026-11-25 04:00:00 UTC")
    rows = result_rows(text.read_text())
    assert [row[:3] for row in rows] == [["5 Retrieval", "top-10 query at 10,000 passages", "3.00 ms"],
                                          ["5 Retrieval", "top-10 query at 1,000,000 passages", "9.00 ms"],
                                          ["6 End to end", "warm: prompt tokens", "450 tokens"]]
    assert "from the run of" in rows[1][7]


@pytest.mark.slow
def test_a_quick_run_writes_every_benchmark_with_a_ratio(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    markdown = (out / "benchmarks.md").read_text(encoding="utf-8")
    rows = result_rows(markdown)
    for bench in ("1 LLM", "2 Embedding", "3 Extraction", "4 Fetch", "5 Retrieval", "6 End to end", "7 Answer quality",
                  "8 Native host", "9 Browser fetch", "10 Images", "11 Image tools"):
        assert any(row[0] == bench and is_number(row[4]) for row in rows), f"no row with a ratio for {bench}"
    assert "python -m benchmarks --quick" in markdown
    for name in ("llama-cpp-python", "sentence-transformers", "torch", "chromadb", "trafilatura", "cores", "RAM"):
        assert name in markdown
    assert (out / "benchmarks-latency.png").read_bytes().startswith(PNG)
    assert "wrote" in done.stdout
