"""Helpers the test modules share: throwaway plugins and process control."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from localsearch import hookimpl
from localsearch.plugins import pm
from localsearch.types import SearchResult


class registered:
    """Register a throwaway plugin for the duration of a ``with`` block."""

    def __init__(self, plugin, name):
        self.plugin, self.name = plugin, name

    def __enter__(self):
        pm.register(self.plugin, name=self.name)
        return self.plugin

    def __exit__(self, *exc):
        pm.unregister(name=self.name)


class Gate:
    """A search engine ``gate`` that waits until the test opens the gate (or 10 s pass),
    returns ``urls``, and notes whether it could still use the embedder afterwards (what an
    engine abandoned at its timeout must no longer be able to do)."""

    def __init__(self, urls=()):
        self.open = threading.Event()
        self.entered = threading.Semaphore(0)
        self.late_calls: list[str] = []
        self.urls = list(urls)

    @hookimpl
    def register_search_engines(self, register):
        gate = self

        class Engine:
            name = "gate"

            def search(self, query, limit, context):
                gate.entered.release()
                gate.open.wait(10)
                try:
                    context.embed([query])
                    gate.late_calls.append("embedded")
                except Exception as error:
                    gate.late_calls.append(type(error).__name__)
                return [SearchResult(url=u) for u in gate.urls]

        register(Engine())


def start_localsearch_server(environment: dict, log: Path, cwd: Path | None = None) -> subprocess.Popen:
    """``localsearch serve`` with ``environment``, its output in ``log``, once it says it is
    serving (within 120 s; a server that dies or never says so fails the test with its log)."""
    process = subprocess.Popen([sys.executable, "-m", "localsearch", "serve"], stdout=log.open("wb"),
                               stderr=subprocess.STDOUT, env=environment, cwd=cwd)
    deadline = time.monotonic() + 120
    while "serving on" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)  # not left running behind a failed test
            raise AssertionError(f"localsearch serve did not start:\n{log.read_text()}")
        time.sleep(0.2)
    return process


def stop(process: subprocess.Popen) -> None:
    """End a server the test started: politely, then not."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


class Inbox:
    """Messages a client received, by arrival, with a wait for the one a test expects."""

    def __init__(self):
        self.messages: list[dict] = []
        self.arrived = threading.Condition()

    def add(self, message: dict) -> None:
        with self.arrived:
            self.messages.append(message)
            self.arrived.notify_all()

    def deliver(self, message: dict) -> bool:
        """A session's ``send``: keeps the message, and says the client is still there."""
        self.add(message)
        return True

    def of(self, id: str) -> list[dict]:
        with self.arrived:
            return [m for m in self.messages if m.get("id") == id]

    def wait(self, predicate, timeout=120.0) -> dict:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                found = next((m for m in self.messages if predicate(m)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                assert left > 0, f"no such message within {timeout} s; last: {self.messages[-3:]} {self.problems()}"
                self.arrived.wait(left)

    def end_of(self, id: str, timeout=120.0) -> dict:
        return self.wait(lambda m: m.get("id") == id and m["type"] in ("done", "error"), timeout)

    def problems(self) -> list[str]:
        return []


def server_status(data: Path) -> dict | None:
    """The status of the server of the data directory ``data``; None when none runs."""
    from localsearch.config import Config
    from localsearch.server import remote_stream

    messages = remote_stream(Config.load(overrides={"data_dir": str(data)}), {"id": "s", "type": "status"})
    return None if messages is None else next((m["data"] for m in messages if m["type"] == "status"), None)


def stop_server(data: Path) -> None:
    """A server a failed test left running (one a host started): ask its pid, and stop it."""
    if (Path(data) / "serve.sock").exists():
        status = server_status(data)
        if status is not None:
            os.kill(status["pid"], 15)
