"""Writing the results: ``benchmarks.md`` (machine, versions, command, the table),
``benchmarks-latency.png`` (the per-stage latency of an answer, cold and warm) and
``benchmarks.json`` (the same rows as data: a run of some benchmarks, ``--only``, keeps the
others' rows from earlier runs, so the hour-long 1M-passage run need not be repeated)."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path

from .harness import Row

CHART = "benchmarks-latency.png"
DATA = "benchmarks.json"
COLOURS = {"start-up (imports)": "#9e9e9e", "load": "#795548", "plan": "#cfd8dc", "search": "#90caf9",
           "fetch": "#1e88e5", "extract": "#26a69a", "index": "#2e7d32", "retrieve": "#9ccc65",
           "extractive answer": "#fdd835", "answer: to first token": "#fb8c00", "answer: generation": "#e53935",
           "verify": "#8e24aa", "other": "#eeeeee"}


def number(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2 if abs(value) >= 0.1 else 3
    return f"{value:,.{digits}f}" + (f" {unit}" if unit else "")


def verdict(row: Row) -> str:
    if row.passed is None:
        return "—"
    return "pass" if row.passed else "**fail**"


def table(rows: list[Row], current: str = "") -> str:
    lines = ["| # | measure | localsearch | raw library | ratio | target | result | notes |",
             "| --- | --- | ---: | ---: | ---: | --- | --- | --- |"]
    for row in rows:
        ratio = "—" if row.ratio is None or math.isnan(row.ratio) else f"{row.ratio:.2f}"
        cells = [row.bench, row.metric, number(row.ours, row.unit), number(row.raw, row.unit), ratio,
                 str(row.target) if row.target else "—", verdict(row), row.note.replace("|", "/")]
        if current and row.run and row.run != current:
            cells[-1] = "; ".join(filter(None, [cells[-1], f"from the run of {row.run}"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stage_table(runs: dict) -> str:
    """Seconds per stage of the answers the chart draws."""
    from .e2e import stage_segments

    columns = [(name, dict(stage_segments(runs[name], name == "cold"))) for name in ("cold", "warm") if runs.get(name)]
    if not columns:
        return "End to end was not measured."
    labels = list(dict.fromkeys(label for _, segments in columns for label in segments))
    lines = ["| stage | " + " | ".join(f"{name} (s)" for name, _ in columns) + " |",
             "| --- | " + " | ".join("---:" for _ in columns) + " |"]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(number(segments.get(label)) for _, segments in columns) + " |")
    lines.append("| **total** | " + " | ".join(number(sum(s.values())) for _, s in columns) + " |")
    return "\n".join(lines)


def earlier_runs(rows: list[Row], current: str, history: list[dict]) -> str:
    """A paragraph naming the earlier runs whose rows the table still shows."""
    kept = [run for run in history if run["when"] != current and any(r.run == run["when"] for r in rows)]
    if not kept:
        return ""
    described = "; ".join(f"{run['when']}: `{run['command']}` ({run['minutes']:.1f} minutes, load "
                          f"{run['machine'].get('load', '?')})" for run in kept)
    return f"Rows marked “from the run of …” were measured by an earlier run on this machine: {described}.\n\n"


def markdown(rows: list[Row], runs: dict, machine: dict, versions: dict, command: str, seconds: float,
             when: str = "", history: list[dict] | None = None) -> str:
    when = when or stamp()
    return f"""# Benchmarks

Written by `python -m benchmarks` on {when} in {seconds / 60:.1f} minutes. Each figure is
measured next to the raw library doing the same work in the same run: the two sides run
alternately, several times, and the ratio is the median of the ratios of side-by-side runs,
so a busy machine slows both alike. Ratios are localsearch ÷ raw library: for rates (1–3)
above 1 is faster, for times (4–6) below 1 is faster. Fetch (4) compares 20 delayed pages
fetched through the pipeline with one such page fetched with plain httpx. End to end (6)
compares with the same answer written with the raw libraries (search, httpx, trafilatura,
sentence-transformers, chroma, llama-cpp-python; no extractive answer, no grounding).

## Machine

| CPU | cores | RAM | OS | load average (1, 5, 15 min) at start → end |
| --- | --- | --- | --- | --- |
| {machine['cpu']} | {machine['cores']} | {machine['ram']} | {machine['os']} | {machine['load']} → {machine.get('load_end', '?')} |

## Versions

| {' | '.join(versions)} |
| {' | '.join('---' for _ in versions)} |
| {' | '.join(versions.values())} |

## Reproduce

```sh
{command}
```

## Results

{earlier_runs(rows, when, history or [])}{table(rows, when)}

## Latency of one answer

![Per-stage latency of an answer, cold and warm]({CHART})

Cold is a new process (`python -m benchmarks.e2e_once`): start-up, imports and model loads
count. Warm is the same `Pipeline` answering a later question over pages it has not seen (a
new, empty store). The run shown is the one with the median total time; "extractive answer"
is the time between the end of retrieval and the extractive answer, "other" what no stage
accounts for. New pages' passages are embedded and stored ("index") after the answer: the
answer is built from the pages in memory and does not wait for them.

{stage_table(runs)}
"""


def chart(runs: dict, path: Path) -> None:
    """A horizontal stacked bar per run (cold, warm) of the seconds each stage took."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .e2e import stage_segments

    bars = [(label, stage_segments(run, cold)) for label, run, cold in
            (("cold\n(new process)", runs.get("cold"), True), ("warm\n(same process)", runs.get("warm"), False)) if run]
    figure, axes = plt.subplots(figsize=(10, 3.2), dpi=120)
    seen = set()
    for y, (label, segments) in enumerate(bars):
        left = 0.0
        for name, seconds in segments:
            if seconds <= 0:
                continue
            axes.barh(y, seconds, left=left, color=COLOURS.get(name, "#607d8b"), edgecolor="white",
                      label=None if name in seen else name)
            seen.add(name)
            left += seconds
        axes.text(left, y, f"  {left:.2f} s", va="center", fontsize=9)
    if not bars:
        axes.text(0.5, 0.5, "end to end not measured", ha="center", va="center", transform=axes.transAxes)
    axes.set_yticks(range(len(bars)), [label for label, _ in bars])
    axes.invert_yaxis()
    axes.set_xlabel("seconds from the start (cold: from launching the process; warm: from the question)")
    axes.set_title("Latency of one answer over 5 fresh pages, by stage")
    axes.margins(x=0.12)
    if seen:
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=6, fontsize=7, frameon=False)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)


def foreign_sections(old: str, new: str) -> str:
    """The ``## `` sections of ``old`` that ``new`` does not have (written by hand or by other
    tools, e.g. the answer-quality figures), so that a re-run keeps them."""
    ours = set(re.findall(r"^## (.+)$", new, re.M))
    kept = [part for part in re.split(r"(?m)^(?=## )", old)[1:] if part.splitlines()[0][3:].strip() not in ours]
    return "".join(kept)


def stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def merge(previous: dict, rows: list[Row], runs: dict, rerun: set[str]) -> tuple[list[Row], dict, list[dict]]:
    """This run's rows plus the earlier rows of the benchmarks it did not run, and of those it
    ran, the earlier figures it did not measure again (the 1M-passage rows of a run without
    ``--full``); the earlier latency runs too when end to end was not run again."""
    measured = {(row.bench, row.metric) for row in rows if row.ours is not None}
    earlier = [Row.from_dict(data) for data in previous.get("rows", [])]
    kept = [row for row in earlier if row.bench not in rerun
            or (row.ours is not None and (row.bench, row.metric) not in measured)]
    shadowed = {(row.bench, row.metric) for row in kept}
    rows = [row for row in rows if row.ours is not None or (row.bench, row.metric) not in shadowed]
    merged = sorted(rows + kept, key=lambda row: int(row.bench.split()[0]))  # stable: order within a benchmark stays
    if not runs and "6 End to end" not in rerun:
        runs = previous.get("latency", {})
    return merged, runs, previous.get("runs", [])


def write(out: Path, rows: list[Row], runs: dict, machine: dict, versions: dict, command: str,
          seconds: float, rerun: set[str] | None = None, when: str = "") -> tuple[Path, Path]:
    """Write the report. ``rerun``: the benchmarks this run measured (default: those ``rows``
    belong to); the rows of the others, and earlier figures this run did not measure again,
    come from ``benchmarks.json``."""
    out.mkdir(parents=True, exist_ok=True)
    text_path, chart_path, data_path = out / "benchmarks.md", out / CHART, out / DATA
    when = when or stamp()
    for row in rows:
        row.run = row.run or when
    history: list[dict] = []
    if data_path.exists():
        rerun = rerun if rerun is not None else {row.bench for row in rows}
        rows, runs, history = merge(json.loads(data_path.read_text(encoding="utf-8")), rows, runs, rerun)
    history = [run for run in history if any(r.run == run["when"] for r in rows) and run["when"] != when]
    history.append({"when": when, "command": command, "minutes": round(seconds / 60, 1), "machine": machine,
                    "versions": versions})
    data_path.write_text(json.dumps({"runs": history, "rows": [r.to_dict() for r in rows], "latency": runs},
                                    indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    text = markdown(rows, runs, machine, versions, command, seconds, when, history)
    if text_path.exists():
        kept = foreign_sections(text_path.read_text(encoding="utf-8"), text)
        text = text.rstrip("\n") + "\n\n" + kept if kept else text
    text_path.write_text(text, encoding="utf-8")
    chart(runs, chart_path)
    return text_path, chart_path


def summary(rows: list[Row]) -> str:
    """A short plain-text version of the table for stdout."""
    lines = []
    for row in rows:
        ratio = "" if row.ratio is None or math.isnan(row.ratio) else f"  ratio {row.ratio:.2f}"
        target = f"  [{row.target}: {verdict(row).strip('*')}]" if row.target else ""
        lines.append(f"{row.bench:<13} {row.metric:<52} {number(row.ours, row.unit):>14} vs "
                     f"{number(row.raw, row.unit):>14}{ratio}{target}")
    return "\n".join(lines)
