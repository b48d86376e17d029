"""``localsearch host``, started as the browser starts it: it checks its caller, relays native
frames to the warm server (starting one when none runs), survives bad frames, and ends
cleanly at the end of its input."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import Inbox, stop_server
from localsearch.config import Config
from localsearch.host import EXTENSION_ID, GECKO_ID, caller_refusal
from localsearch.native import FrameError, join_parts, read_message

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = f"chrome-extension://{EXTENSION_ID}/"
QUESTION = "When was the Harrowmere lighthouse first lit?"


def frame(message) -> bytes:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return struct.pack("=I", len(body)) + body


class Host(Inbox):
    """A host process started as Chromium starts it, with its messages read as they come
    (``part`` messages joined)."""

    def __init__(self, environment: dict, *caller: str, program: list[str] | None = None):
        program = program or [sys.executable, "-m", "localsearch", "host"]
        self.process = subprocess.Popen([*program, *caller],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=environment)
        super().__init__()
        self.problem_list: list[str] = []  # anything on stdout that was not a frame
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self.process.stderr.read, daemon=True).start()  # never let it fill

    def _read(self) -> None:
        parts: dict[str, list[dict]] = {}
        while True:
            try:
                message = read_message(self.process.stdout)
            except FrameError as error:  # anything but a frame on stdout breaks the browser's channel
                self.problem_list.append(str(error))
                return
            if message is None:
                return
            if message.get("type") == "part":
                parts.setdefault(message["id"], []).append(message)
                if len(parts[message["id"]]) < message["count"]:
                    continue
                message = join_parts(parts.pop(message["id"]))
            self.add(message)

    def send(self, data) -> None:
        self.process.stdin.write(data if isinstance(data, bytes) else frame(data))
        self.process.stdin.flush()

    def problems(self) -> list[str]:
        return self.problem_list

    def close(self, timeout=30.0) -> int:
        self.process.stdin.close()
        return self.process.wait(timeout)


def test_the_extension_ids_are_those_of_its_manifest():
    manifest = json.loads((ROOT / "extension" / "manifest.json").read_text())
    digest = hashlib.sha256(base64.b64decode(manifest["key"])).hexdigest()[:32]
    assert "".join(chr(ord("a") + int(digit, 16)) for digit in digest) == EXTENSION_ID
    assert manifest["browser_specific_settings"]["gecko"]["id"] == GECKO_ID


def test_the_host_serves_its_own_extension_and_the_ids_the_user_adds(home):
    config = Config.load()
    assert caller_refusal([ORIGIN], config) == ""
    assert caller_refusal([ORIGIN, "--parent-window=0"], config) == ""  # as on Windows
    assert caller_refusal(["/home/u/.mozilla/native-messaging-hosts/x.json", GECKO_ID], config) == ""
    other = "chrome-extension://abcdefghijklmnopabcdefghijklmnop/"
    assert "'abcdefghijklmnopabcdefghijklmnop' may not use localsearch" in caller_refusal([other], config)
    assert "without the caller's id" in caller_refusal([], config)
    added = Config.load(overrides={"host_extensions": ["abcdefghijklmnopabcdefghijklmnop"]})
    assert caller_refusal([other], added) == ""


def test_another_extension_is_told_plainly_why_it_is_refused(home):
    host = Host(dict(os.environ), "chrome-extension://abcdefghijklmnopabcdefghijklmnop/")
    refusal = host.wait(lambda m: m["type"] == "error")
    assert refusal["data"]["kind"] == "refused" and "may not use localsearch" in refusal["data"]["message"]
    assert host.close() == 1 and host.problems() == []
    assert "refused" in (home / "data" / "host.log").read_text()  # and the log says so, not stdout


@pytest.fixture(scope="module")
def environment(tmp_path_factory, web):
    """A home whose first host starts the server; the server stops 6 s after its last client."""
    folder = tmp_path_factory.mktemp("host")
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("LOCALSEARCH_")},
                   "LOCALSEARCH_DATA_DIR": str(folder / "data"), "LOCALSEARCH_CONFIG": str(folder / "config.toml"),
                   "LOCALSEARCH_ALLOWED_HOSTS": f"{web.host}:{web.port}", "LOCALSEARCH_ENGINES": "searxng",
                   "LOCALSEARCH_BUNDLED_MODEL": "true",  # it stands in for a model the user chose
                   "LOCALSEARCH_SEARXNG_URL": web.url, "LOCALSEARCH_LLM": "false",
                   "LOCALSEARCH_SERVER_IDLE_MINUTES": "0.1"}
    yield environment
    stop_server(folder / "data")


@pytest.mark.slow
def test_a_question_through_the_host_is_answered_by_a_server_it_starts_and_that_stays_warm(environment):
    first = Host(environment, ORIGIN)
    first.send({"id": "q1", "type": "ask", "question": QUESTION})
    done = first.end_of("q1", timeout=180)
    assert done["type"] == "done", done
    answer = first.wait(lambda m: m["id"] == "q1" and m["type"] == "answer")["data"]
    assert "1887" in answer["answer"] and answer["citations"]
    sources = {s["url"] for s in answer["sources"]}
    assert all(c["url"] in sources for c in answer["citations"])
    assert first.close() == 0 and first.problems() == []

    # A new connection (the side panel reopened) finds the models loaded.
    second = Host(environment, ORIGIN)
    second.send({"id": "q2", "type": "ask", "question": "Who was the last keeper of the Harrowmere lighthouse?"})
    assert second.end_of("q2")["type"] == "done"
    timings = second.wait(lambda m: m["id"] == "q2" and m["type"] == "answer")["data"]["timings"]
    assert timings.get("load", 0.0) < 0.5, timings

    # The first connection's conversation is in the history: the new one continues, lists and reopens it.
    second.send({"id": "q3", "type": "ask", "question": "And how tall is it?", "conversation_id": answer["conversation_id"]})
    assert second.end_of("q3")["type"] == "done"
    follow_up = second.wait(lambda m: m["id"] == "q3" and m["type"] == "answer")["data"]
    assert follow_up["position"] == 2 and "41 metres" in follow_up["answer"]
    second.send({"id": "h1", "type": "history"})
    listed = second.wait(lambda m: m["id"] == "h1" and m["type"] == "conversations")["data"]
    assert [(c["title"], c["turns"], c["client"]) for c in listed["conversations"]][0] == (QUESTION, 2, "browser")
    second.send({"id": "h2", "type": "conversation", "conversation_id": answer["conversation_id"]})
    reopened = second.wait(lambda m: m["id"] == "h2" and m["type"] == "conversation")["data"]
    assert [t["answer"]["answer"] for t in reopened["turns"]] == [answer["answer"], follow_up["answer"]]
    assert second.close() == 0

    # With no client left, the server it started stops by itself.
    socket_file = Path(environment["LOCALSEARCH_DATA_DIR"]) / "serve.sock"
    deadline = time.monotonic() + 30
    while socket_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not socket_file.exists(), "the idle server did not stop"


BAD_FRAMES = [
    pytest.param(struct.pack("=I", 100) + b"x" * 100, "not JSON", id="not-json"),
    pytest.param(frame(b"\xff\xfe\xfd"), "not UTF-8", id="not-utf8"),
    pytest.param(frame([1, 2, 3]), "JSON object", id="not-an-object"),
    pytest.param(frame({"id": "b1", "type": "fly"}), "unknown request type", id="unknown-type"),
    pytest.param(frame({"id": "b2", "type": "ask"}), "question", id="missing-field"),
    pytest.param(frame({"id": "b3", "type": "ask", "question": 42}), "question", id="wrong-type"),
    pytest.param(frame({"id": "b4", "type": "ask", "question": "q", "client": "cli",  # the CLI may; not the browser
                        "settings": {"allowed_hosts": ["10.0.0.0/8"]}}), "cannot be changed from the browser",
                 id="posing-as-the-cli"),
    pytest.param(frame({"id": "b5", "type": "ask_page", "question": "q",
                        "page": {"url": "https://a.example/", "html": "x" * 10_000_001}}), "html", id="page-too-large"),
    pytest.param(struct.pack("=I", 2**32 - 1), "over the limit", id="impossible-length"),
]


@pytest.mark.slow
def test_bad_frames_each_get_an_error_and_the_host_keeps_serving(environment):
    host = Host(environment, ORIGIN)
    for n, param in enumerate(BAD_FRAMES):
        data, problem = param.values
        if param.id == "impossible-length":
            continue  # its 4 GB never come: the end-of-input test below sends it last
        host.send(data)
        host.send({"id": f"ping{n}", "type": "ping"})
        assert host.wait(lambda m: m.get("id") == f"ping{n}")["type"] == "pong"
        errors = [m for m in host.messages if m["type"] == "error"]
        assert errors and problem in errors[-1]["data"]["message"], (param.id, errors[-1:])
    # Random bytes inside valid frames, and random frames: each answered, then a ping.
    import random

    generator = random.Random(7)
    for n in range(20):
        body = bytes(generator.randrange(256) for _ in range(generator.randrange(1, 200)))
        host.send(frame(body))
        host.send({"id": f"r{n}", "type": "ping"})
        assert host.wait(lambda m: m.get("id") == f"r{n}")["type"] == "pong"
    assert host.problems() == []
    # An impossible length, then the end of input: named, and the host ends cleanly.
    host.send(BAD_FRAMES[-1].values[0])
    assert host.close() == 0
    assert "ended" in host.wait(lambda m: m["type"] == "error" and "ended" in m["data"]["message"])["data"]["message"]


@pytest.mark.slow
def test_the_end_of_input_cancels_what_the_host_had_in_flight(environment):
    host = Host(environment, ORIGIN)
    host.send({"id": "p", "type": "ping"})
    host.wait(lambda m: m.get("id") == "p")
    host.send({"id": "slow", "type": "ask", "question": QUESTION})
    started = time.monotonic()
    assert host.close(timeout=20) == 0
    assert time.monotonic() - started < 15


def _install(environment: dict, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "localsearch", *arguments], env=environment,
                          capture_output=True, text=True, timeout=60)


def test_install_host_writes_a_manifest_per_browser_and_uninstall_removes_exactly_that(tmp_path):
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith(("LOCALSEARCH_", "XDG_"))},
                   "HOME": str(tmp_path), "LOCALSEARCH_DATA_DIR": str(tmp_path / "data"),
                   "LOCALSEARCH_CONFIG": str(tmp_path / "config.toml")}
    mine = tmp_path / ".config" / "chromium" / "NativeMessagingHosts" / "other.host.json"
    mine.parent.mkdir(parents=True)
    mine.write_text("{}")  # another program's host: never touched
    done = _install(environment, "install-host", "--browser", "chromium", "--browser", "firefox", "--json")
    assert done.returncode == 0, done.stderr
    written = {entry["browser"]: Path(entry["manifest"]) for entry in json.loads(done.stdout)}
    assert written == {"chromium": mine.parent / "org.localsearch.host.json",
                       "firefox": tmp_path / ".mozilla" / "native-messaging-hosts" / "org.localsearch.host.json"}
    chromium = json.loads(written["chromium"].read_text())
    assert chromium["allowed_origins"] == [ORIGIN] and chromium["type"] == "stdio"
    assert json.loads(written["firefox"].read_text())["allowed_extensions"] == [GECKO_ID]
    launcher = Path(chromium["path"])
    assert launcher.is_absolute() and os.access(launcher, os.X_OK)
    assert sys.executable in launcher.read_text()
    assert _install(environment, "install-host", "--browser", "netscape").returncode == 1
    # Since then another installation registered itself for Firefox: its manifest is not ours.
    theirs = {**json.loads(written["firefox"].read_text()), "path": "/opt/other/localsearch-host"}
    written["firefox"].write_text(json.dumps(theirs))

    removed = _install(environment, "uninstall-host")
    assert removed.returncode == 0
    assert not written["chromium"].exists() and not launcher.exists()
    assert mine.exists() and json.loads(written["firefox"].read_text()) == theirs
    assert "nothing to remove" in _install(environment, "uninstall-host").stdout


@pytest.mark.slow
def test_the_launcher_a_manifest_names_answers_as_chromium_would_start_it(environment, tmp_path):
    home = {**environment, "HOME": str(tmp_path)}
    assert _install(home, "install-host", "--browser", "chromium").returncode == 0
    manifest = json.loads((tmp_path / ".config" / "chromium" / "NativeMessagingHosts" /
                           "org.localsearch.host.json").read_text())
    # Chromium starts the program with the extension's origin, in an environment of its own.
    browser_environment = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for n in range(2):
        host = Host(browser_environment, manifest["allowed_origins"][0], program=[manifest["path"]])
        host.send({"id": f"q{n}", "type": "ask", "question": QUESTION})
        assert host.end_of(f"q{n}", timeout=180)["type"] == "done"
        answer = host.wait(lambda m: m["id"] == f"q{n}" and m["type"] == "answer")["data"]
        assert "1887" in answer["answer"] and answer["citations"]
        if n == 1:  # the second connection is answered by the warm server
            assert answer["timings"].get("load", 0.0) < 0.5, answer["timings"]
        assert host.close() == 0


@pytest.mark.slow
def test_requests_interleave_and_one_is_cancelled_while_another_completes(environment):
    host = Host(environment, ORIGIN)
    host.send({"id": "a", "type": "ask", "question": QUESTION})
    # With the model on, "b" takes seconds: the cancel surely finds it running.
    host.send({"id": "b", "type": "ask", "question": "Who was the last keeper of the Harrowmere lighthouse?",
               "settings": {"llm": True}})
    host.wait(lambda m: m["id"] == "b" and m["type"] == "stage_start")
    host.send({"id": "c", "type": "cancel", "target": "b"})
    assert host.end_of("b")["data"]["kind"] == "cancelled"
    assert host.end_of("c")["data"]["cancelled"] is True
    assert host.end_of("a")["type"] == "done"
    assert "1887" in host.wait(lambda m: m["id"] == "a" and m["type"] == "answer")["data"]["answer"]
    assert host.close() == 0


def test_doctor_reports_each_problem_with_what_to_do_and_exits_non_zero(tmp_path):
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith(("LOCALSEARCH_", "XDG_"))},
                   "HOME": str(tmp_path), "LOCALSEARCH_DATA_DIR": str(tmp_path / "data"),
                   "LOCALSEARCH_CONFIG": str(tmp_path / "config.toml")}
    assert _install(environment, "install-host", "--browser", "chrome", "--browser", "chromium").returncode == 0
    chromium = tmp_path / ".config" / "chromium" / "NativeMessagingHosts" / "org.localsearch.host.json"
    # Chromium's manifest names a launcher that is gone; Firefox's is broken; Vivaldi's launcher
    # prints text instead of frames; Brave is a Snap.
    moved = json.loads(chromium.read_text())
    moved["path"] = str(tmp_path / "moved" / "localsearch-host")
    chromium.write_text(json.dumps(moved))
    firefox = tmp_path / ".mozilla" / "native-messaging-hosts" / "org.localsearch.host.json"
    firefox.parent.mkdir(parents=True)
    firefox.write_text('{"name": "org.localsearch.host", ')
    talker = tmp_path / "talker"
    talker.write_text("#!/bin/sh\necho hello\n")
    talker.chmod(0o700)
    vivaldi = tmp_path / ".config" / "vivaldi" / "NativeMessagingHosts" / "org.localsearch.host.json"
    vivaldi.parent.mkdir(parents=True)
    vivaldi.write_text(json.dumps({**moved, "path": str(talker)}))
    (tmp_path / "snap" / "brave").mkdir(parents=True)
    (tmp_path / "data" / "history.sqlite3").write_bytes(b"not a database" * 100)

    done = _install(environment, "doctor", "--offline", "--json")
    assert done.returncode == 1, done.stderr
    checks = {check["name"]: check for check in json.loads(done.stdout)}
    assert checks["browser chrome"]["ok"] is True  # registered, and its launcher answers a ping
    assert "names a launcher that does not exist" in checks["browser chromium"]["detail"]
    assert "install-host --browser chromium" in checks["browser chromium"]["fix"]
    assert checks["browser firefox"]["ok"] is False and "cannot be read" in checks["browser firefox"]["detail"]
    assert "does not answer" in checks["browser vivaldi"]["detail"]
    assert "cannot start native-messaging hosts" in checks["browser brave: Snap"]["detail"]
    assert checks["data directory"]["ok"] is True and checks["search engines"]["ok"] is None
    assert checks["history"]["ok"] is False and "mv " in checks["history"]["fix"]
    assert not (tmp_path / "data" / "serve.sock").exists()  # the launcher's check started no server
