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
from urllib.parse import urlsplit, urlunsplit

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

    def add(self, kind: str, url: str, **details) -> dict | None:
        """Note one request; returns its entry (to add what is learnt later, e.g. that the
        connection was refused), or None past MAX_ENTRIES."""
        entry = {"kind": kind, "url": _without_credentials(url),
                 **{k: v for k, v in details.items() if v not in (None, "")}}
        with self._lock:  # the time taken inside the lock: the list stays in time order
            entry["at"] = round(time.perf_counter() - self._started, 3)
            if len(self._entries) < MAX_ENTRIES:
                self._entries.append(entry)
                return entry
            self.dropped += 1
            return None

    def entries(self) -> list[dict]:
        with self._lock:
            listed = [dict(entry) for entry in self._entries]
            if self.dropped:
                listed.append({"kind": "more", "url": "", "count": self.dropped,
                               "at": listed[-1]["at"] if listed else 0.0})
            return listed


def _without_credentials(url: str) -> str:
    """``url`` without a user name and password in it (``https://user:pass@host/`` is ``https://host/``)."""
    if "@" not in url:
        return url
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url


def current() -> RequestLog | None:
    return _current.get()


def record(kind: str, url: str, **details) -> dict | None:
    """Note one request (``kind``: search, page, subresource, model, ...) in the list of the
    question being answered, and return its entry; nothing when there is none (a plugin called
    outside a question). A user name and password in ``url`` are left out."""
    log = _current.get()
    return log.add(kind, url, **details) if log is not None else None


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
