"""Background indexing: the pages a question read are embedded and stored after its answer, on
one thread of their own, a batch at a time, and only while no question is running, so that
storing one question's pages never delays the next question.

Until a page is stored it stays pending here: a question that needs it meanwhile reads it from
here (its passages are picked like a new page's) instead of fetching it again, so nothing read
is lost while it waits. ``drain`` waits for the queue; ``finish`` does so until Ctrl-C and
stops (a server or a one-shot command before it exits); ``cancel`` drops what waits.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from .types import Document, Passage

__all__ = ["Indexer", "BATCH"]

logger = logging.getLogger(__name__)

BATCH = 32  # passages embedded at a time: a question that arrives waits for one batch at most
_ALL: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """At exit, let every indexer finish the batch in hand (see ``Indexer.close``). A command
    that keeps its pages drains its indexer before this runs (atexit runs last-registered first)."""
    for indexer in list(_ALL):
        indexer.close()
Chunked = tuple[Document, list[Passage]]


class _Waiting(NamedTuple):
    """A page waiting to be stored, with the embedder and store of the question that read it."""

    document: Document
    passages: list[Passage]
    embed: Callable
    store_page: Callable


class Indexer:
    """Stores chunked pages in the background. ``store_page(document, passages, vectors)`` and
    ``embed(texts)`` are given per submission (they carry that question's settings)."""

    def __init__(self):
        _ALL.add(self)
        self._pending: OrderedDict[str, _Waiting] = OrderedDict()
        self._condition = threading.Condition()
        self._questions = 0  # questions running now: indexing waits while there are any
        self._working: str | None = None  # the URL being embedded now
        self._thread: threading.Thread | None = None
        self._closed = False
        self.failures: list[str] = []  # why pages could not be stored, for the next question to report
        self.stored = 0

    # -- questions ----------------------------------------------------------------------
    def question_started(self) -> None:
        with self._condition:
            self._questions += 1

    def question_ended(self) -> None:
        with self._condition:
            self._questions -= 1
            self._condition.notify_all()

    # -- pages ----------------------------------------------------------------------------
    def submit(self, chunked: list[Chunked], embed: Callable, store_page: Callable) -> None:
        """Queue pages to store; a page queued again replaces its older version."""
        if not chunked:
            return
        with self._condition:
            if self._closed:
                raise RuntimeError("the indexer is closed")
            for document, passages in chunked:
                self._pending.pop(document.url, None)
                self._pending[document.url] = _Waiting(document, passages, embed, store_page)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="localsearch-indexer", daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def pending(self, url: str) -> Chunked | None:
        """A page read but not stored yet, or None."""
        with self._condition:
            entry = self._pending.get(url)
            return (entry.document, entry.passages) if entry is not None else None

    def waiting(self) -> int:
        """How many pages wait to be stored (the one being stored included)."""
        with self._condition:
            return len(self._pending)

    def take_failures(self) -> list[str]:
        with self._condition:
            failures, self.failures = self.failures, []
            return failures

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued page is stored (or failed); False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while self._pending and not self._closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._condition.wait(left)
            return not self._pending

    def finish(self, timeout: float | None = None) -> int:
        """Store what waits, for up to ``timeout`` seconds or until Ctrl-C (the user would
        rather stop now: a page not stored is read again when it is next asked for), then stop
        (see ``close``). Returns how many pages were not stored."""
        try:
            self.drain(timeout)
        except KeyboardInterrupt:
            pass
        with self._condition:
            waiting, stored = len(self._pending), self.stored
        try:
            self.close()  # the page in hand is stored if its last batch is under way, else dropped
        except KeyboardInterrupt:  # pressed again: stop waiting for that batch too
            pass
        with self._condition:
            return waiting - (self.stored - stored)

    def cancel(self) -> int:
        """Drop what waits (not the page being stored now); returns how many pages were dropped."""
        with self._condition:
            dropped = [url for url in self._pending if url != self._working]
            for url in dropped:
                del self._pending[url]
            self._condition.notify_all()
            return len(dropped)

    def close(self, wait: float = 30.0) -> None:
        """Stop after the batch in hand (what waits is dropped), waiting up to ``wait`` seconds
        for it: a thread killed inside the embedder's native code aborts the process."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)

    # -- the thread -------------------------------------------------------------------------
    def _still_wanted(self, url: str, document: Document) -> bool:
        """Whether ``document`` is still the version of ``url`` to store (the caller holds the lock)."""
        entry = self._pending.get(url)
        return entry is not None and entry.document is document

    def _turn(self) -> bool:
        """Wait until there is work and no question runs; False when closed."""
        with self._condition:
            while not self._closed and (self._questions > 0 or not self._pending):
                self._condition.wait()
            return not self._closed

    def _work(self) -> None:
        while self._turn():
            with self._condition:
                url, (document, passages, embed, store_page) = next(iter(self._pending.items()))
                self._working = url
            try:
                vectors: list[list[float]] = []
                for start in range(0, len(passages), BATCH):
                    if start and not self._turn():  # a question may have come since the last batch
                        return
                    with self._condition:
                        if not self._still_wanted(url, document):
                            break  # cancelled, or replaced by a newer read: that one will be stored
                    vectors += embed([p.text for p in passages[start:start + BATCH]])
                else:
                    store_page(document, passages, vectors)
                    with self._condition:
                        self.stored += 1
            except Exception as error:  # a page that cannot be stored is reported, never fatal
                logger.warning("could not store %s in the index: %s", url, error)
                with self._condition:
                    self.failures.append(f"{url}: {error}")
            finally:
                with self._condition:
                    self._working = None
                    if self._still_wanted(url, document):
                        del self._pending[url]
                    self._condition.notify_all()
