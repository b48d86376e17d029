"""The threads a pipeline's questions wait on: one asyncio loop for async fetchers, and bounded
pools for blocking fetchers, for search engines and for the URL policy's DNS lookups.

A pipeline owns one ``Workers`` for its life, so no question builds an event loop of its own
(``asyncio.run`` fails inside a caller that already runs one) and a long-lived server does not
gain a thread per question. Every thread is a daemon: a plugin that hangs is abandoned at its
time limit and never holds up the exit of the process.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any

from .errors import Cancelled

__all__ = ["Workers", "ThreadPool", "wait", "loop_thread"]


def loop_thread(name: str) -> asyncio.AbstractEventLoop:
    """A new asyncio loop running forever on a daemon thread of its own, ready when returned."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    threading.Thread(target=run, name=name, daemon=True).start()
    ready.wait()
    return loop


class ThreadPool:
    """At most ``size`` daemon threads, started as work arrives, running submitted calls in
    order. Unlike ``concurrent.futures.ThreadPoolExecutor`` it is not joined at exit."""

    def __init__(self, size: int, name: str):
        self.size, self.name = max(1, size), name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, function: Callable, *args: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self.name} pool is closed")
            self._jobs.put((future, function, args))
            if self._idle == 0 and len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}",
                                          daemon=True)
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1  # one idle thread will take this job
        return future

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, function, args = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function(*args))
                except BaseException as error:  # handed to whoever waits on the future
                    future.set_exception(error)
            with self._lock:
                self._idle += 1

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._jobs.put(None)

    @property
    def threads(self) -> int:
        return len(self._threads)


class Workers:
    """One event loop thread and two bounded thread pools, started on first use."""

    def __init__(self, fetch_threads: int, engine_threads: int, lookup_threads: int = 8):
        self.fetch_pool = ThreadPool(fetch_threads, "localsearch-fetch")
        self.engine_pool = ThreadPool(engine_threads, "localsearch-engine")
        # DNS lookups of the URL policy: apart, so that hung blocking fetchers cannot hold up
        # the checks of the pages other fetchers would read.
        self.lookup_pool = ThreadPool(lookup_threads, "localsearch-lookup")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = loop_thread("localsearch-loop")
            return self._loop

    def run(self, coroutine: Coroutine, cancel: threading.Event | None, timeout: float | None = None):
        """Run ``coroutine`` on the loop and wait for it; ``cancel`` (set by another thread)
        cancels it and raises ``Cancelled``."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return wait(future, cancel, timeout)

    def close(self) -> None:
        self.fetch_pool.close()
        self.engine_pool.close()
        self.lookup_pool.close()
        with self._lock:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._loop = None


def wait(future: Future, cancel: threading.Event | None, timeout: float | None = None):
    """The result of ``future``, polling ``cancel`` so that a cancelled question stops waiting
    at once; on cancel the future is cancelled too (an asyncio task stops at its next await)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if cancel is not None and cancel.is_set():
            future.cancel()
            raise Cancelled()
        step = 0.05
        if deadline is not None:
            step = min(step, max(0.0, deadline - time.monotonic()))
        try:
            return future.result(timeout=step)
        except TimeoutError:
            if deadline is not None and time.monotonic() >= deadline:
                future.cancel()
                raise
