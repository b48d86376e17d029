"""Load on one real ``localsearch serve``: 20 questions at once through the native-messaging host
and through the CLI (each answered or told ``busy`` by the bounded queue), the server's memory
while they run, cancels that reach a page being fetched and the model's generation, a host that
vanishes mid-answer, and a soak of a few hundred questions that must leave no threads, memory
or open files behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import server_status, start_localsearch_server, stop
from test_host import ORIGIN, Host
from test_serve import Connection

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

QUESTIONS = [
    "When was the Harrowmere lighthouse first lit?",
    "Who discovered the Kestrel Valley comet?",
    "What is the codename of the Quillstone 3.0 release?",
    "Who won the Calder Shield?",
    "How many people died in the Tessaly dam disaster?",
    "What does the Velkaro glass beetle eat?",
    "How many ferries does Norvane run on batteries?",
    "What goes into the Oldenvale saffron plum tart?",
]
WORKERS, QUEUE = 2, 8


def process_sample(pid: int) -> dict:
    """What the server process holds now: resident memory and its peak (MB), threads, open files."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss": int(fields["VmRSS"].split()[0]) / 1024, "hwm": int(fields["VmHWM"].split()[0]) / 1024,
            "threads": len(os.listdir(f"/proc/{pid}/task")), "fds": len(os.listdir(f"/proc/{pid}/fd"))}


class MemoryWatch:
    """Samples the server's resident memory every 50 ms while a block runs."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.stopped = pid, 0.0, threading.Event()

    def __enter__(self):
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while not self.stopped.is_set():
            self.peak = max(self.peak, process_sample(self.pid)["rss"])
            self.stopped.wait(0.05)

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()


@pytest.fixture(scope="module")
def server(tmp_path_factory, web):
    folder = tmp_path_factory.mktemp("load")
    data = folder / "data"
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("LOCALSEARCH_")},
                   "LOCALSEARCH_DATA_DIR": str(data), "LOCALSEARCH_CONFIG": str(folder / "config.toml"),
                   "LOCALSEARCH_ALLOWED_HOSTS": f"{web.host}:{web.port}", "LOCALSEARCH_ENGINES": "searxng",
                   "LOCALSEARCH_BUNDLED_MODEL": "true",  # it stands in for a model the user chose
                   "LOCALSEARCH_SEARXNG_URL": web.url, "LOCALSEARCH_SERVE_WORKERS": str(WORKERS),
                   "LOCALSEARCH_SERVE_QUEUE": str(QUEUE)}
    log = folder / "serve.log"
    process = start_localsearch_server(environment, log)
    # Warm: every article read once, so the load measures the server, not the first fetches.
    connection = Connection(data)
    for n, question in enumerate(QUESTIONS):
        connection.send({"id": f"w{n}", "type": "ask", "question": question, "settings": {"llm": False}})
        assert connection.end_of(f"w{n}")["type"] == "done"
    connection.close()
    yield {"environment": environment, "data": data, "log": log, "process": process}
    stop(process)


def wait_idle(data: Path, within: float = 10.0) -> float:
    """Seconds until the server reports no request running or waiting (fails past ``within``)."""
    started = time.monotonic()
    while True:
        status = server_status(data)
        if status["running"] == 0 and status["waiting"] == 0:
            return time.monotonic() - started
        assert time.monotonic() - started < within, status
        time.sleep(0.05)


def test_twenty_questions_at_once_through_the_host_and_the_cli(server, reliability):
    pid, environment = server["process"].pid, server["environment"]
    before = process_sample(pid)

    # Through the host: 20 frames written at once, as a busy browser would.
    host = Host(environment, ORIGIN)
    with MemoryWatch(pid) as host_memory:
        started = time.monotonic()
        for n in range(20):
            host.send({"id": f"h{n}", "type": "ask", "question": QUESTIONS[n % len(QUESTIONS)],
                       "settings": {"llm": False}})
        ends = [host.end_of(f"h{n}", timeout=180) for n in range(20)]
        host_seconds = time.monotonic() - started
    assert host.close() == 0 and host.problems() == []
    answered = [e for e in ends if e["type"] == "done"]
    busy = [e for e in ends if e["type"] == "error" and e["data"]["kind"] == "busy"]
    assert len(answered) + len(busy) == 20, [e for e in ends if e not in answered and e not in busy]
    assert len(answered) >= WORKERS + QUEUE and busy, "the queue takes 10; the rest are told busy"
    assert all("try again shortly" in e["data"]["message"] for e in busy)
    for end in answered:
        stream = host.of(end["id"])
        assert any(m["type"] == "answer" and m["data"]["citations"] for m in stream), end["id"]
    wait_idle(server["data"])

    # Through the CLI: 20 `localsearch ask --json` at once, each a client of the same server.
    with MemoryWatch(pid) as cli_memory:
        started = time.monotonic()
        asks = [subprocess.Popen([sys.executable, "-m", "localsearch", "ask", "--json", "--no-llm",
                                  QUESTIONS[n % len(QUESTIONS)]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=environment) for n in range(20)]
        outputs = [(a.communicate(timeout=300), a.returncode) for a in asks]
        cli_seconds = time.monotonic() - started
    cli_answered = cli_busy = 0
    for (stdout, stderr), code in outputs:
        result = json.loads(stdout)
        if code == 0:
            assert "fatal" not in result and result["citations"], result
            cli_answered += 1
        else:
            assert code == 1 and result["fatal"].startswith("busy:"), (result.get("fatal"), stderr[-500:])
            cli_busy += 1
    assert cli_answered + cli_busy == 20 and cli_answered >= WORKERS + QUEUE
    assert "Traceback" not in server["log"].read_text()
    wait_idle(server["data"])
    after = process_sample(pid)
    peak = max(host_memory.peak, cli_memory.peak)
    # Measured: 20 questions at once add 105-120 MB (the queue holds at most 10); allowed 250.
    assert peak - before["rss"] < 250, (before, peak)
    # The pipeline's pools start threads as work arrives, up to their bounds: a few more may stay.
    assert after["threads"] <= before["threads"] + 10, (before, after)
    assert server["process"].poll() is None

    bound = f"{WORKERS} running + {QUEUE} waiting; the rest 'busy'; none hangs"
    reliability.record("Load", "20 questions at once through the native-messaging host (one connection)",
                       outcome="each answered with citations or told 'busy ... try again shortly'", bound=bound,
                       measured=f"{len(answered)} answered, {len(busy)} busy, in {host_seconds:.1f} s")
    reliability.record("Load", "20 `localsearch ask --json` processes at once against the server",
                       outcome="each exits 0 with an answer, or 1 with a 'busy' fatal error", bound=bound,
                       measured=f"{cli_answered} answered, {cli_busy} busy, in {cli_seconds:.1f} s")
    reliability.record("Load", "the server's memory during those 40 questions",
                       outcome="resident memory bounded by the queue; threads within the pools' bounds",
                       bound="peak RSS < RSS before + 250 MB",
                       measured=f"RSS {before['rss']:.0f} MB before, peak {peak:.0f} MB, {after['rss']:.0f} MB after; "
                                f"threads {before['threads']} → {after['threads']}")


def test_cancel_reaches_a_page_being_fetched(server, web, reliability):
    """The first result takes 30 s to load: a cancel ends the request at once, not when it loads."""
    connection = Connection(server["data"])
    web.clear_log()
    connection.send({"id": "f", "type": "ask", "question": QUESTIONS[0], "client": "cli",
                     "settings": {"searxng_url": web.url + "/slow-first", "fetch_timeout": 25.0, "llm": False}})
    deadline = time.monotonic() + 30
    while web.count("/slow?") == 0:  # the page is being fetched: the test web has its request
        assert time.monotonic() < deadline, web.requests[-5:]
        time.sleep(0.02)
    time.sleep(0.2)
    started = time.monotonic()
    connection.send({"id": "x", "type": "cancel", "target": "f"})
    ended = connection.end_of("f", timeout=30)
    seconds = time.monotonic() - started
    assert ended["type"] == "error" and ended["data"]["kind"] == "cancelled"
    assert seconds < 1.0, seconds
    idle = wait_idle(server["data"], within=3)
    connection.close()
    reliability.record("Load", "cancel while the question's first page takes 30 s to load",
                       outcome="'cancelled' at once; the worker free", bound="< 1 s",
                       measured=f"cancelled in {seconds * 1000:.0f} ms, no request running "
                                f"{idle * 1000:.0f} ms later")


def test_cancel_reaches_the_generation_through_the_host(server, reliability):
    # The real model writing up to 1,000 tokens: the cancel reaches the generation.
    host = Host(server["environment"], ORIGIN)
    host.send({"id": "g", "type": "ask", "question": QUESTIONS[0], "settings": {"llm": True, "max_tokens": 1000}})
    host.wait(lambda m: m["id"] == "g" and m["type"] == "answer_delta" and m["data"]["text"].strip(), timeout=120)
    started = time.monotonic()
    host.send({"id": "c", "type": "cancel", "target": "g"})
    ended = host.end_of("g", timeout=30)
    seconds = time.monotonic() - started
    assert ended["type"] == "error" and ended["data"]["kind"] == "cancelled"
    deltas_after = sum(1 for m in host.of("g") if m["type"] == "answer_delta")
    assert seconds < 2.0, seconds
    idle = wait_idle(server["data"], within=3)
    assert host.close() == 0
    reliability.record("Load", "cancel through the host while the real model streams its answer (max_tokens 1000)",
                       outcome="'cancelled'; generation stops and the worker is free", bound="< 2 s",
                       measured=f"cancelled in {seconds * 1000:.0f} ms ({deltas_after} deltas in all), no request "
                                f"running {idle * 1000:.0f} ms later")


def test_a_host_killed_mid_answer_frees_its_work(server, reliability):
    """The browser's host dies (SIGKILL) while the model writes: its connection closes and the
    server stops the generation, freeing the worker for the next question."""
    host = Host(server["environment"], ORIGIN)
    host.send({"id": "k", "type": "ask", "question": QUESTIONS[1], "settings": {"llm": True, "max_tokens": 1000}})
    host.wait(lambda m: m["id"] == "k" and m["type"] == "answer_delta", timeout=120)
    assert server_status(server["data"])["running"] == 1
    started = time.monotonic()
    host.process.kill()
    host.process.wait()
    wait_idle(server["data"], within=5)
    seconds = time.monotonic() - started
    assert seconds < 3.0
    connection = Connection(server["data"])
    connection.send({"id": "after", "type": "ask", "question": QUESTIONS[0], "settings": {"llm": False}})
    assert connection.end_of("after")["type"] == "done"
    connection.close()
    reliability.record("Load", "the host killed (SIGKILL) while the model writes its answer",
                       outcome="the server cancels the request; the next question is answered",
                       bound="running 0 within 3 s", measured=f"running 0 after {seconds * 1000:.0f} ms")


SOAK_QUESTIONS = 300


def test_a_soak_of_a_few_hundred_questions_leaves_nothing_behind(server, reliability):
    """300 questions, two at a time on one connection, with every 25th cancelled and every 30th
    sent on a connection that closes mid-answer: threads, memory and open files of the server
    at the end are those after the warm-up."""
    pid, data = server["process"].pid, server["data"]
    connection = Connection(data)
    samples, answered, cancelled, vanished = {}, 0, 0, 0
    started = time.monotonic()
    pending: list[str] = []
    for n in range(SOAK_QUESTIONS):
        if n in (50, 175):  # after a warm-up of 50, and half way: what the server holds when settled
            for id in pending:
                ended = connection.end_of(id, timeout=60)
                answered += ended["type"] == "done"
                cancelled += ended["type"] == "error"
            pending.clear()
            wait_idle(data)
            time.sleep(0.5)
            samples["start" if n == 50 else "middle"] = process_sample(pid)
        id = f"s{n}"
        if n % 30 == 29:  # a client that goes away mid-answer
            other = Connection(data)
            other.send({"id": id, "type": "ask", "question": QUESTIONS[n % len(QUESTIONS)], "settings": {"llm": False}})
            other.wait(lambda m, id=id: m["id"] == id and m["type"] == "stage_start")
            other.close()
            vanished += 1
            continue
        connection.send({"id": id, "type": "ask", "question": f"{QUESTIONS[n % len(QUESTIONS)]} ({n})",
                         "settings": {"llm": False}})
        pending.append(id)
        if n % 25 == 24:
            connection.wait(lambda m, id=id: m["id"] == id and m["type"] == "stage_start")
            connection.send({"id": f"c{n}", "type": "cancel", "target": id})
        while len(pending) >= WORKERS:
            end = connection.end_of(pending.pop(0), timeout=60)
            if end["type"] == "done":
                answered += 1
            else:
                assert end["data"]["kind"] == "cancelled", end
                cancelled += 1
    for id in pending:
        end = connection.end_of(id, timeout=60)
        answered += end["type"] == "done"
        cancelled += end["type"] == "error"
    seconds = time.monotonic() - started
    connection.close()
    wait_idle(data)
    time.sleep(0.5)  # the closed connections' threads end
    samples["end"] = process_sample(pid)
    start, middle, end = samples["start"], samples["middle"], samples["end"]
    assert answered + cancelled + vanished == SOAK_QUESTIONS and answered > 250
    assert end["threads"] <= start["threads"] + 2, samples
    assert end["fds"] <= start["fds"] + 2, samples
    # Measured: RSS grows 55-130 MB over the first 125 questions after the warm-up, and -5 to +56
    # MB over the last 125. Python's own heap stays flat (tracemalloc, in one process: +0.4 MB over
    # 120 questions while RSS rose 30 MB): the creep is native allocators (torch, chroma) holding
    # freed memory. Bounded: under 0.5 MB a question over the last 125, 250 MB in all.
    assert end["rss"] - start["rss"] < 250, samples
    assert end["rss"] - middle["rss"] < 0.5 * 125, samples
    assert server["process"].poll() is None
    reliability.record(
        "Load", f"a soak of {SOAK_QUESTIONS} questions on one server (two at a time; every 25th cancelled, every "
                "30th from a client that vanishes mid-answer)",
        outcome="threads and open files after it are those after a warm-up of 50; memory bounded (native "
                "allocators hold some freed memory; Python's heap stays flat)",
        bound="threads and open files + 2 at most; RSS + 250 MB at most, under 0.5 MB a question over the last 125",
        measured=f"{answered} answered, {cancelled} cancelled, {vanished} vanished in {seconds:.0f} s; threads "
                 f"{start['threads']} → {end['threads']}, open files {start['fds']} → {end['fds']}, RSS "
                 f"{start['rss']:.0f} → {middle['rss']:.0f} (after 175) → {end['rss']:.0f} MB (peak "
                 f"{end['hwm']:.0f} MB)")
