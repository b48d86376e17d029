"""The events a question streams, and the bookkeeping that makes them.

Event types (``Event.type``): ``stage_start``, ``stage_end`` (stage, seconds, detail),
``search_results``, ``page`` (one URL's status), ``sources``, ``extractive_answer``,
``answer_delta`` (text), ``answer``, ``warning`` (a non-fatal problem), and exactly one of
``done`` or ``error`` (fatal) at the end.
"""

from __future__ import annotations

import math
import threading
import time
import traceback

from .errors import Cancelled, LocalsearchError
from .types import Event

__all__ = ["Run", "EVENT_TYPES", "warning", "fatal", "fold_events", "finite"]

EVENT_TYPES = ("stage_start", "stage_end", "search_results", "page", "sources", "extractive_answer",
               "answer_delta", "answer", "warning", "done", "error")


class Run:
    """One question's (or index run's) settings, cancel flag and stage timings."""

    def __init__(self, config, cancel: threading.Event | None = None):
        self.config = config
        self.cancel = cancel or threading.Event()
        self.timings: dict[str, float] = {}
        self._started: dict[str, float] = {}
        from .outgoing import RequestLog

        self.requests = RequestLog()  # what this question sends out of the machine

    def check(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def start(self, stage: str) -> Event:
        self.check()
        self._started[stage] = time.perf_counter()
        return Event("stage_start", {"stage": stage})

    def end(self, stage: str, **detail) -> Event:
        seconds = time.perf_counter() - self._started[stage]
        self.timings[stage] = round(self.timings.get(stage, 0.0) + seconds, 4)
        return Event("stage_end", {"stage": stage, "seconds": round(seconds, 4), **detail})


def warning(message: str, stage: str | None = None) -> Event:
    """A problem that costs part of the work, not the question."""
    return Event("warning", {"message": message, **({"stage": stage} if stage else {})})


def fatal(error: BaseException, run: Run) -> Event:
    """The ``error`` event that ends a question: a user-facing reason for a LocalsearchError,
    the traceback (for ``--debug``) for anything else."""
    if isinstance(error, LocalsearchError):
        kind = "cancelled" if isinstance(error, Cancelled) else type(error).__name__
        return Event("error", {"message": str(error), "kind": kind, "fatal": True, "timings": run.timings,
                               "requests": run.requests.entries()})
    return Event("error", {"message": f"internal error: {type(error).__name__}: {error}", "kind": "internal",
                           "fatal": True, "traceback": "".join(traceback.format_exception(error)),
                           "timings": run.timings, "requests": run.requests.entries()})


def fold_events(events) -> dict:
    """Fold an ``ask`` event stream into the one JSON document of ``ask --json``: the last
    answer (model or extractive) with every warning, and ``fatal`` if the question failed."""
    result = {"question": None, "answer": "", "citations": [], "sources": [], "unsupported": [],
              "timings": {}, "usage": {}, "model": None, "extractive": True, "short_answer": None,
              "errors": []}
    for event in events:
        if event.type in ("extractive_answer", "answer"):
            result.update({k: v for k, v in event.data.items() if k != "turn"})
        elif event.type == "sources":
            result["sources"] = event.data["sources"]
        elif event.type in ("warning", "error"):
            result["errors"].append(event.data["message"])
            if event.type == "error":
                result["fatal"] = event.data["message"]
                if "traceback" in event.data:
                    result["traceback"] = event.data["traceback"]
        if "timings" in event.data:
            result["timings"] = dict(event.data["timings"])
        if "requests" in event.data:
            result["requests"] = list(event.data["requests"])
    return result


def finite(value):
    """``value`` with NaN and infinities as None: JSON has no such numbers, and a browser's
    JSON.parse refuses the ``NaN`` Python would write (a score a plugin computed as 0/0)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
