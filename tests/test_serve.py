"""The session layer through a real ``localsearch serve`` on its Unix socket: several requests
on one connection, the browser's page, cancel during generation, clients that vanish, the
models it keeps, and a private data directory. Then the CLI against a server whose stream
breaks off."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import Inbox, start_localsearch_server, stop

pytestmark = pytest.mark.slow
QUESTION = "When was the Harrowmere lighthouse first lit?"


@pytest.fixture(scope="module")
def server(tmp_path_factory, web):
    folder = tmp_path_factory.mktemp("serve")
    data = folder / "data"
    data.mkdir(mode=0o755)  # as an older version left it: readable by others
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("LOCALSEARCH_")},
                   "LOCALSEARCH_DATA_DIR": str(data), "LOCALSEARCH_CONFIG": str(folder / "config.toml"),
                   "LOCALSEARCH_ALLOWED_HOSTS": f"{web.host}:{web.port}", "LOCALSEARCH_ENGINES": "searxng",
                   "LOCALSEARCH_BUNDLED_MODEL": "true",  # it stands in for a model the user chose
                   "LOCALSEARCH_SEARXNG_URL": web.url, "LOCALSEARCH_SERVE_WORKERS": "2",
                   "LOCALSEARCH_LOADED_MODELS": "2"}
    log = folder / "serve.log"
    process = start_localsearch_server(environment, log)
    yield {"environment": environment, "data": data, "log": log, "process": process, "folder": folder}
    stop(process)


class Connection(Inbox):
    """A client of the socket, as the native-messaging host will be: requests out, messages
    in, sorted by request id as they arrive."""

    def __init__(self, data: Path):
        self.socket = socket.socket(socket.AF_UNIX)
        self.socket.connect(str(data / "serve.sock"))
        self.reader = self.socket.makefile("rb")
        super().__init__()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.reader:
            self.add(json.loads(line))

    def send(self, request: dict) -> None:
        self.socket.sendall(json.dumps(request).encode() + b"\n")

    def close(self):
        # close() alone leaves the connection open while the reader's file object lives
        self.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()


def test_the_data_directory_and_the_socket_are_private(server):
    data = server["data"]
    assert stat.S_IMODE(data.stat().st_mode) == 0o700, "an existing folder readable by others is tightened"
    assert stat.S_IMODE((data / "serve.sock").stat().st_mode) == 0o600
    connection = Connection(data)
    connection.send({"id": "i", "type": "index", "urls": [server["environment"]["LOCALSEARCH_SEARXNG_URL"]
                                                         + "/articles/kestrel-valley-comet"]})
    assert connection.end_of("i")["type"] == "done"
    connection.close()
    for path in data.rglob("*"):
        assert not stat.S_IMODE(path.lstat().st_mode) & 0o077, f"{path} is readable by others"


def test_requests_on_one_connection_stream_interleaved(server):
    connection = Connection(server["data"])
    connection.send({"id": "a", "type": "ask", "question": QUESTION, "settings": {"llm": False}})
    connection.send({"id": "b", "type": "ask", "question": "Who discovered the Kestrel Valley comet?",
                     "settings": {"llm": False}})
    for id in ("a", "b"):
        assert connection.end_of(id)["type"] == "done"
        stream = connection.of(id)
        assert sum(m["type"] in ("done", "error") for m in stream) == 1 and stream[-1]["type"] == "done"
        assert any(m["type"] == "answer" and m["data"]["citations"] for m in stream)
    ids = [m["id"] for m in connection.messages]
    assert ids.index("b") < len(ids) - 1 - ids[::-1].index("a"), "the second ran while the first did"
    connection.close()


def test_the_browsers_page_through_the_warm_server(server):
    html = ("<html><head><title>Team notes</title></head><body><article><p>The quarterly planning "
            "meeting of the Fenwick orchard cooperative moved to Thursday 9 May at the old mill, "
            "because the barn roof is being repaired by the volunteers this spring.</p></article></body></html>")
    connection = Connection(server["data"])
    connection.send({"id": "p", "type": "ask_page", "question": "Where is the Fenwick planning meeting?",
                     "page": {"url": "https://intranet.example/notes", "title": "Team notes", "html": html},
                     "settings": {"llm": False}})
    assert connection.end_of("p")["type"] == "done"
    answer = next(m["data"] for m in connection.of("p") if m["type"] == "answer")
    assert answer["sources"][0]["url"] == "https://intranet.example/notes"
    assert "old mill" in answer["citations"][0]["quote"]
    connection.close()


def test_settings_from_the_browser_are_limited(server):
    connection = Connection(server["data"])
    connection.send({"id": "m", "type": "ask", "question": QUESTION, "settings": {"model": "/tmp/x.gguf"}})
    refused = connection.end_of("m")
    assert refused["type"] == "error" and "'model' cannot be changed from the browser" in refused["data"]["message"]
    connection.send({"id": "c", "type": "ask", "question": QUESTION, "client": "cli",
                     "settings": {"data_dir": str(server["folder"] / "other")}})
    assert "belongs to the server" in connection.end_of("c")["data"]["message"]
    connection.close()


def test_cancel_during_generation(server):
    connection = Connection(server["data"])
    connection.send({"id": "g", "type": "ask", "question": QUESTION, "settings": {"max_tokens": 1000}})
    connection.wait(lambda m: m["id"] == "g" and m["type"] == "answer_delta")
    started = time.monotonic()
    connection.send({"id": "x", "type": "cancel", "target": "g"})
    ended = connection.end_of("g", timeout=10)
    assert ended["type"] == "error" and ended["data"]["kind"] == "cancelled"
    assert time.monotonic() - started < 2.0
    assert connection.end_of("x")["data"]["cancelled"] is True
    # The model is free again: the next question is answered by it.
    connection.send({"id": "n", "type": "ask", "question": QUESTION, "settings": {"max_tokens": 16}})
    assert connection.end_of("n")["type"] == "done"
    assert any(m["type"] == "answer_delta" for m in connection.of("n"))
    connection.close()


def test_a_client_that_vanishes_mid_answer_frees_its_work(server, web):
    """The request waits on a page that takes 30 s; its client disconnects; the server stops
    the work at once (not when the page arrives) and goes on serving."""
    connection = Connection(server["data"])
    connection.send({"id": "v", "type": "ask", "question": QUESTION, "client": "cli",
                     "settings": {"searxng_url": web.url + "/slow-first", "fetch_timeout": 25.0}})
    connection.wait(lambda m: m["id"] == "v" and m["type"] == "stage_start" and m["data"]["stage"] == "fetch")
    time.sleep(0.3)
    connection.close()
    other = Connection(server["data"])
    started = time.monotonic()
    while True:
        other.messages.clear()
        other.send({"id": "s", "type": "status"})
        status = other.wait(lambda m: m["type"] == "status")
        if status["data"]["running"] == 0 or time.monotonic() - started > 10:
            break
        time.sleep(0.1)
    assert status["data"]["running"] == 0 and time.monotonic() - started < 3.0
    other.send({"id": "after", "type": "ask", "question": QUESTION, "settings": {"llm": False}})
    assert other.end_of("after")["type"] == "done"
    other.close()
    assert server["process"].poll() is None


def test_the_server_keeps_a_bounded_number_of_models(server, tmp_path):
    from localsearch_plugins.llama_cpp_answer import bundled_model_path

    connection = Connection(server["data"])
    for i in range(4):  # four paths, so four distinct models as far as the server can tell
        link = tmp_path / f"model-{i}.gguf"
        link.symlink_to(bundled_model_path())
        connection.send({"id": f"m{i}", "type": "ask", "question": QUESTION, "client": "cli",
                         "settings": {"model": str(link), "max_tokens": 4}})
        assert connection.end_of(f"m{i}")["type"] == "done"
        answer = next(m["data"] for m in connection.of(f"m{i}") if m["type"] == "answer")
        assert answer["model"] == link.name
    connection.send({"id": "s", "type": "status"})
    loaded = connection.wait(lambda m: m["type"] == "status")["data"]["loaded"]
    models = [item["name"] for item in loaded if item["kind"] == "chat_model"]
    assert models == ["model-2.gguf", "model-3.gguf"], loaded  # the least recently used went
    connection.close()


def test_the_cli_reports_a_stream_that_breaks_off(tmp_path, web):
    """A server that dies mid-answer (here: one that sends a stage, then closes, or garbles)
    is an error with exit 1, never an empty answer with exit 0."""
    data = tmp_path / "data"
    data.mkdir()
    environment = {**os.environ, "LOCALSEARCH_DATA_DIR": str(data), "LOCALSEARCH_CONFIG": str(tmp_path / "c.toml")}
    for reply, message in ((b'{"id": "%s", "type": "stage_start", "data": {"stage": "search"}}\n', "broke off"),
                           (b'{"id": "%s", "type": "stage_start", "data": {"st', "garbled")):
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(data / "serve.sock"))
        listener.listen()

        def answer_once():
            peer, _ = listener.accept()
            request = json.loads(peer.makefile("rb").readline())
            peer.sendall(reply.replace(b"%s", request["id"].encode()))
            peer.close()

        thread = threading.Thread(target=answer_once, daemon=True)
        thread.start()
        for extra in ([], ["--json"]):
            if extra:
                thread = threading.Thread(target=answer_once, daemon=True)
                thread.start()
            asked = subprocess.run([sys.executable, "-m", "localsearch", "ask", *extra, "--no-llm", QUESTION],
                                   capture_output=True, text=True, env=environment, timeout=60)
            assert asked.returncode == 1, asked
            if extra:
                assert message in json.loads(asked.stdout)["fatal"]
            else:
                assert message in asked.stderr
        listener.close()
        (data / "serve.sock").unlink()


def test_two_servers_started_at_once_leave_one_that_answers_and_stops_when_idle(tmp_path, web):
    """Two browsers opening their panels at once each start a server: one must win, and be
    reachable (the loser must not unlink its socket); idle, it stops by itself."""
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("LOCALSEARCH_")},
                   "LOCALSEARCH_DATA_DIR": str(tmp_path / "data"), "LOCALSEARCH_CONFIG": str(tmp_path / "c.toml"),
                   "LOCALSEARCH_LLM": "false"}
    command = [sys.executable, "-m", "localsearch", "serve", "--idle-minutes", "0.05"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment,
                                  text=True) for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        while all(p.poll() is None for p in processes) and time.monotonic() < deadline:
            time.sleep(0.05)
        loser = next(p for p in processes if p.poll() is not None)
        winner = next(p for p in processes if p is not loser)
        assert loser.returncode == 1 and "already running" in loser.stdout.read()
        socket_file = tmp_path / "data" / "serve.sock"
        connection = None
        while connection is None and time.monotonic() < deadline:
            try:
                connection = socket.socket(socket.AF_UNIX)
                connection.connect(str(socket_file))
            except OSError:
                connection.close()
                connection = None
                time.sleep(0.1)
        assert connection is not None, "the winner cannot be reached"
        with connection, connection.makefile("rwb") as channel:
            channel.write(b'{"id": "s", "type": "status"}\n')
            channel.flush()
            assert json.loads(channel.readline())["data"]["pid"] == winner.pid
        assert winner.wait(timeout=60) == 0  # no client for 3 s: it stopped by itself
        assert not socket_file.exists()
    finally:
        for process in processes:
            stop(process)
