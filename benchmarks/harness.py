"""What every benchmark shares: interleaved timing, result rows with targets, the isolated
environment, the test web, and the description of the machine."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ROOT

VERSIONED = ["llama-cpp-python", "sentence-transformers", "torch", "chromadb", "trafilatura", "localsearch"]


# -- settings --------------------------------------------------------------------------------
@dataclass
class Settings:
    """How much work each benchmark does; ``quick()`` is the tiny run the test uses."""

    reps: int = 5                  # interleaved repetitions of each side
    llm_max_tokens: int = 128
    llm_prompt_chars: int | None = None  # source text in the benchmark prompt (None: prompt_chars)
    embed_passages: int = 256
    extract_loops: int = 3         # passes over the 8 test-web pages per repetition
    fetch_pages: int = 20
    fetch_delay_ms: int = 300
    scales: list[int] = field(default_factory=lambda: [10_000, 100_000])
    insert_batch: int = 5000       # passages per insert call (chroma refuses more than ~5,400)
    doc_passages: int = 50         # passages per synthetic document on localsearch's insert path
    queries: int = 50
    warm_runs: int = 3
    cold_runs: int = 2
    e2e_max_tokens: int | None = None  # None: the default max_tokens setting
    qa_limit: int | None = None        # questions of the QA set for the answer-quality benchmark
    quick: bool = False

    @classmethod
    def quick_run(cls) -> "Settings":
        return cls(reps=2, llm_max_tokens=16, llm_prompt_chars=600, embed_passages=32, extract_loops=1, scales=[2000],
                   insert_batch=500, queries=10, warm_runs=1, cold_runs=1, e2e_max_tokens=24, qa_limit=3,
                   quick=True)


# -- rows and targets ------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """A bound on the ratio (``on="ratio"``) or on localsearch's own figure (``on="figure"``)."""

    on: str
    op: str
    value: float
    unit: str = ""

    def check(self, figure: float | None, ratio: float | None) -> bool | None:
        measured = ratio if self.on == "ratio" else figure
        if measured is None:
            return None
        return measured >= self.value if self.op == ">=" else measured <= self.value

    def __str__(self) -> str:
        sign = "≥" if self.op == ">=" else "≤"
        if self.on == "ratio":
            return f"ratio {sign} {self.value:g}"
        return f"{sign} {self.value:g} {self.unit}".strip()


@dataclass
class Row:
    """One line of the results table: localsearch's figure, the raw library's, their ratio."""

    bench: str
    metric: str
    ours: float | None
    raw: float | None
    unit: str
    target: Target | None = None
    note: str = ""
    ratio: float | None = None
    passed: bool | None = None
    run: str = ""  # when the run that measured it started (rows of earlier runs are kept by --only)

    @classmethod
    def paired(cls, bench: str, metric: str, ours: list, raw: list, unit: str, target: Target | None = None,
               note: str = "") -> "Row":
        """A row from side-by-side runs: medians, the median paired ratio, and the ratios' range."""
        ratios = sorted(o / r for o, r in zip(ours, raw) if o is not None and r)
        spread = f"{len(ratios)} pairs, ratios {ratios[0]:.2f}–{ratios[-1]:.2f}" if len(ratios) > 1 else ""
        return cls(bench, metric, median(ours), median(raw), unit, target,
                   note="; ".join(filter(None, [note, spread])), ratio=median(ratios) if ratios else None)

    def to_dict(self) -> dict:
        return {**{k: v for k, v in vars(self).items() if k not in ("target", "passed")},
                "target": vars(self.target) if self.target else None}

    @classmethod
    def from_dict(cls, data: dict) -> "Row":
        target = Target(**data["target"]) if data.get("target") else None
        return cls(**{**{k: v for k, v in data.items() if k not in ("target", "passed")}, "target": target})

    def __post_init__(self):
        if self.ratio is None and self.ours is not None and self.raw:
            self.ratio = self.ours / self.raw
        if self.target is not None:
            self.passed = self.target.check(self.ours, self.ratio)


# -- timing ----------------------------------------------------------------------------------
def interleave(contenders: dict[str, Callable[[], Any]], reps: int, warmup: bool = True) -> dict[str, list]:
    """Run each contender ``reps`` times, alternating them (and which goes first) so a busy
    spell of the machine falls on both; one untimed warm-up run each first."""
    names = list(contenders)
    if warmup:
        for name in names:
            contenders[name]()
    results: dict[str, list] = {name: [] for name in names}
    for rep in range(reps):
        for name in (names if rep % 2 == 0 else names[::-1]):
            results[name].append(contenders[name]())
    return results


def alternate(items, contenders: dict[str, Callable[[Any], Any]]) -> dict[str, list]:
    """Each contender on each item, alternating which goes first from item to item."""
    names = list(contenders)
    results: dict[str, list] = {name: [] for name in names}
    for i, item in enumerate(items):
        for name in (names if i % 2 == 0 else names[::-1]):
            results[name].append(contenders[name](item))
    return results


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def paired_ratio(ours: list[float], raw: list[float]) -> float:
    """Median of the ratios of runs made side by side: steadier than a ratio of medians when
    the machine's load drifts during the benchmark."""
    return median([o / r for o, r in zip(ours, raw) if o is not None and r])


def median(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def _status_mb(field: str) -> float | None:
    """A memory figure of this process from ``/proc/self/status`` (e.g. ``VmRSS``), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """Resident memory of this process, in MB (``/proc``; peak RSS where there is none)."""
    current = _status_mb("VmRSS")
    if current is not None:
        return current
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def peak_mb() -> float:
    """Peak resident memory of this process, in MB (NaN without ``/proc``)."""
    peak = _status_mb("VmHWM")
    return float("nan") if peak is None else peak


# -- environment -----------------------------------------------------------------------------
def isolate_environment() -> Path:
    """A private data and config directory, no user settings, no model hub: returns the temp
    directory (the caller removes it)."""
    home = Path(tempfile.mkdtemp(prefix="localsearch-bench-"))
    for key in list(os.environ):
        if key.startswith("LOCALSEARCH_"):
            del os.environ[key]
    os.environ["LOCALSEARCH_DATA_DIR"] = str(home / "data")
    os.environ["LOCALSEARCH_CONFIG"] = str(home / "config.toml")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return home


def start_testweb():
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from testweb import TestWeb

    web = TestWeb().start()
    # The test web is on loopback, which the URL policy refuses unless allowed: allowed here by
    # its exact address, as a user would allow an intranet host (subprocesses inherit it).
    os.environ["LOCALSEARCH_ALLOWED_HOSTS"] = f"{web.host}:{web.port}"
    return web


def load_config(**overrides):
    from localsearch.config import Config

    return Config.load(overrides)


# -- the machine -----------------------------------------------------------------------------
def machine() -> dict[str, str]:
    return {"cpu": _cpu_model(), "cores": str(os.cpu_count() or "?"), "ram": _ram(),
            "os": f"{platform.system()} {platform.release()}", "load": _load()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GB"
    except OSError:
        pass
    return "?"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
