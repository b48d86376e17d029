"""Every request a question sends out of this machine, listed as it is made: search queries
(with their engine), pages and what they load (redirects and a rendered page's subresources
included), and calls to a model server. A question's list is in its ``--json`` answer
(``requests``) and shown by ``ask --show-requests``.

Whatever makes a request records it with ``record()``; a plugin does the same. The list of the
question being answered is found through a context variable, which the pipeline carries into
its event loop and worker threads (``carry``).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

__all__ = ["RequestLog", "record", "recording", "carry", "current"]

_current: contextvars.ContextVar["RequestLog | None"] = contextvars.ContextVar("localsearch_requests", default=None)
MAX_ENTRIES = 5000  # a page that asks for endless subresources cannot grow the answer without end


class RequestLog:
    """The requests of one question, in the order they were made."""

    def __init__(self):
        self._entries: list[dict] = []
        self._lock = threading.Lock()
        self._started = time.perf_counter()
        self.dropped = 0

    def add(self, kind: str, url: str, **details) -> None:
        entry = {"kind": kind, "url": url, "at": round(time.perf_counter() - self._started, 3),
                 **{k: v for k, v in details.items() if v not in (None, "")}}
        with self._lock:
            if len(self._entries) < MAX_ENTRIES:
                self._entries.append(entry)
            else:
                self.dropped += 1

    def entries(self) -> list[dict]:
        with self._lock:
            return list(self._entries)


def current() -> RequestLog | None:
    return _current.get()


def record(kind: str, url: str, **details) -> None:
    """Note one request (``kind``: search, page, subresource, model, ...) in the list of the
    question being answered; nothing when there is none (a plugin called outside a question)."""
    log = _current.get()
    if log is not None:
        log.add(kind, url, **details)


@contextmanager
def recording(log: RequestLog | None):
    """Make ``log`` the list requests are recorded in, for the code inside."""
    token = _current.set(log)
    try:
        yield log
    finally:
        try:
            _current.reset(token)
        except ValueError:  # reset from another context (a generator closed elsewhere): harmless
            pass


def carry(function: Callable) -> Callable:
    """``function``, bound to the current list, to run on another thread (a pool's)."""
    log = _current.get()

    def bound(*args, **kwargs):
        with recording(log):
            return function(*args, **kwargs)

    return bound
