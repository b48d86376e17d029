"""8. Native host: a warm answer through ``localsearch host`` (the browser's frames -> the host
-> the warm ``localsearch serve``) against the same answer from the Python API in this
process, alternating question by question, each side with a store of its own and asked once
the other has stored its pages; then a new host
connection (a side panel reopened), which must reach its first answer without loading a model.
Extractive answers (no LLM): the host's cost is what is left to see."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .e2e import pick_questions
from .harness import Row, Target, alternate

BENCH = "8 Native host"


class _Connection:
    """A host process started as Chromium starts it; one request at a time."""

    def __init__(self, environment: dict):
        from localsearch.host import EXTENSION_ID

        self.process = subprocess.Popen([sys.executable, "-m", "localsearch", "host", f"chrome-extension://{EXTENSION_ID}/"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        env=environment)
        self.count = 0

    def ask(self, question: str) -> dict:
        """Seconds to the first answer event and to the checked answer, and its timings."""
        from localsearch.native import read_message, write_message

        self.count += 1
        id = f"q{self.count}"
        started = time.perf_counter()
        write_message({"id": id, "type": "ask", "question": question}, self.process.stdin)
        result: dict = {}
        while True:
            message = read_message(self.process.stdout)
            if message is None:
                raise RuntimeError("the host ended before answering")
            if message.get("id") != id:
                continue
            if message["type"] == "extractive_answer" and "first" not in result:
                result["first"] = time.perf_counter() - started
            if message["type"] == "answer":
                result.update(seconds=time.perf_counter() - started, timings=message["data"]["timings"])
            if message["type"] in ("done", "error"):
                if message["type"] == "error":
                    raise RuntimeError(message["data"]["message"])
                return result

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


def _drain_server(data_dir: Path, timeout: float = 120.0) -> None:
    """Wait until the server has stored every page it read."""
    from localsearch.config import Config
    from localsearch.server import remote_stream

    config = Config.load(overrides={"data_dir": str(data_dir)})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = next((m for m in remote_stream(config, {"id": "s", "type": "status"}) or []
                       if m["type"] == "status"), None)
        if status is None or not status["data"]["indexing"]:
            return
        time.sleep(0.05)


def run(web, settings, home: Path) -> list[Row]:
    from localsearch.pipeline import Pipeline

    questions = pick_questions(web.url, settings.reps + 1)
    shared = {"LOCALSEARCH_ENGINES": "searxng", "LOCALSEARCH_SEARXNG_URL": web.url, "LOCALSEARCH_LLM": "false"}
    environment = {**os.environ, **shared, "LOCALSEARCH_DATA_DIR": str(home / "host-data")}
    server = subprocess.Popen([sys.executable, "-m", "localsearch", "serve"], env=environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pipeline = Pipeline(engines=["searxng"], searxng_url=web.url, llm=False, data_dir=str(home / "api-data"))

        def api(question: str) -> dict:
            started = time.perf_counter()
            for event in pipeline.ask(question):
                if event.type == "answer":
                    return {"seconds": time.perf_counter() - started}
            raise RuntimeError("the pipeline gave no answer")

        def settled(ask):
            # Each side stores its pages in the background after answering; asked while the
            # other side does, a question would pay for that side's embedding.
            def timed(question: str) -> dict:
                pipeline.indexer.drain(120)
                _drain_server(home / "host-data")
                return ask(question)
            return timed

        connection = _Connection(environment)
        connection.ask(questions[0])  # waits for the server's models, and warms both sides
        api(questions[0])
        runs = alternate(questions[1:], {"host": settled(connection.ask), "api": settled(api)})
        connection.close()

        reopened = _Connection(environment)  # a new connection to the warm server
        again = reopened.ask(questions[1])
        reopened.close()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    return [
        Row.paired(BENCH, "warm answer through the host vs the Python API: seconds",
                   [r["seconds"] for r in runs["host"]], [r["seconds"] for r in runs["api"]], "s",
                   Target("ratio", "<=", 1.05)),
        Row(BENCH, "new host connection: model loading before its first answer", again["timings"].get("load", 0.0),
            None, "s", Target("figure", "<=", 0.05, "s"), note=f"first answer after {again['first']:.2f} s"),
    ]
