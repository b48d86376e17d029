"""The session layer in this process: requests checked and dispatched, concurrent streams,
the bounded queue, cancel, and who may change which setting."""

from __future__ import annotations

import threading
import time

import pytest

from localsearch import hookimpl
from localsearch.config import Config
from localsearch.events import fold_events
from localsearch.session import Session
from localsearch.types import SearchResult

from helpers import Gate, Inbox, registered

QUESTION = "When was the Harrowmere lighthouse first lit?"


@pytest.fixture
def settings(home, web):
    return {"engines": ["searxng"], "searxng_url": web.url, "llm": False, "search_timeout": 5.0,
            "fetch_timeout": 3.0}


def test_two_requests_stream_interleaved_and_each_ends_once(settings):
    session = Session(Config.load(settings))
    inbox = Inbox()
    session.handle({"id": "a", "type": "ask", "question": QUESTION}, "browser", inbox.deliver)
    session.handle({"id": "b", "type": "search", "query": "Kestrel valley comet discovery"}, "browser", inbox.deliver)
    inbox.end_of("a"), inbox.end_of("b")
    for id in ("a", "b"):
        stream = inbox.of(id)
        terminal = [m for m in stream if m["type"] in ("done", "error")]
        assert [m["type"] for m in terminal] == ["done"] and stream[-1] is terminal[0], stream[-3:]
    order = [m["id"] for m in inbox.messages]
    assert order.index("b") < len(order) - 1 - order[::-1].index("a"), "the two streams ran at the same time"
    answer = next(m for m in inbox.of("a") if m["type"] == "answer")["data"]
    assert answer["citations"] and answer["answer"]  # the answer travels in the --json shape
    assert next(m for m in inbox.of("b") if m["type"] == "sources")["data"]["passages"]


def test_past_the_queue_a_request_is_busy_at_once(settings):
    gate = Gate()
    with registered(gate, "gate"):
        session = Session(Config.load({**settings, "engines": ["gate"], "serve_workers": 1, "serve_queue": 1}))
        inbox = Inbox()
        session.handle({"id": "1", "type": "ask", "question": "one"}, "browser", inbox.deliver)
        assert gate.entered.acquire(timeout=30)  # the first is running, held in its search
        session.handle({"id": "2", "type": "ask", "question": "two"}, "browser", inbox.deliver)  # waits
        started = time.monotonic()
        session.handle({"id": "3", "type": "ask", "question": "three"}, "browser", inbox.deliver)
        busy = inbox.end_of("3", timeout=5)
        assert time.monotonic() - started < 1.0
        assert busy["type"] == "error" and busy["data"]["kind"] == "busy" and "busy" in busy["data"]["message"]
        gate.open.set()
        for id in ("1", "2"):  # the queued one runs when the first ends (no results: a clear error)
            assert "no search results" in inbox.end_of(id)["data"]["message"]


def test_cancel_during_search_stops_the_request_and_the_abandoned_engine(settings):
    gate = Gate()
    with registered(gate, "gate"):
        session = Session(Config.load({**settings, "engines": ["gate"], "search_timeout": 30.0}))
        inbox = Inbox()
        session.handle({"id": "q", "type": "ask", "question": "anything"}, "browser", inbox.deliver)
        assert gate.entered.acquire(timeout=30)
        started = time.monotonic()
        session.handle({"id": "c", "type": "cancel", "target": "q"}, "browser", inbox.deliver)
        ended = inbox.end_of("q", timeout=5)
        assert time.monotonic() - started < 1.0
        assert ended["type"] == "error" and ended["data"]["kind"] == "cancelled"
        assert inbox.end_of("c")["data"] == {"cancelled": True}
        gate.open.set()
        deadline = time.monotonic() + 5
        while not gate.late_calls and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gate.late_calls == ["Cancelled"], "an engine of an ended question still used the embedder"
    inbox = Inbox()
    session.handle({"id": "x", "type": "cancel", "target": "nothing"}, "browser", inbox.deliver)
    assert inbox.end_of("x")["data"] == {"cancelled": False}


def test_cancel_during_fetch_is_prompt(settings, web):
    slow = [web.url + "/slow?seconds=20", web.url + "/articles/harrowmere-lighthouse"]
    gate = Gate(slow)
    gate.open.set()
    with registered(gate, "gate"):
        session = Session(Config.load({**settings, "engines": ["gate"], "fetch_timeout": 30.0}))
        inbox = Inbox()
        session.handle({"id": "q", "type": "ask", "question": QUESTION}, "browser", inbox.deliver)
        inbox.wait(lambda m: m["id"] == "q" and m["type"] == "stage_start" and m["data"]["stage"] == "fetch", 60)
        time.sleep(0.3)  # the slow page is being fetched
        started = time.monotonic()
        session.handle({"id": "c", "type": "cancel", "target": "q"}, "browser", inbox.deliver)
        ended = inbox.end_of("q", timeout=10)
        assert ended["data"]["kind"] == "cancelled" and time.monotonic() - started < 2.0


@pytest.mark.parametrize("client, settings_sent, refused", [
    ("browser", {"data_dir": "/tmp/elsewhere"}, "data_dir"),
    ("browser", {"model": "/tmp/other.gguf"}, "model"),
    ("browser", {"searxng_url": "http://10.0.0.1/"}, "searxng_url"),
    ("browser", {"allowed_hosts": ["10.0.0.0/8"]}, "allowed_hosts"),
    ("cli", {"data_dir": "/tmp/elsewhere"}, "data_dir"),
    ("cli", {"use_server": False}, "use_server"),
    ("cli", {"top_k": "many"}, "top_k"),
    ("browser", {"max_pages": 0}, "max_pages"),
])
def test_a_setting_the_sender_may_not_change_is_refused(settings, client, settings_sent, refused):
    session = Session(Config.load(settings))
    messages = list(session.run({"id": "s", "type": "ask", "question": QUESTION, "settings": settings_sent}, client))
    assert [m["type"] for m in messages] == ["error"]
    assert messages[0]["id"] == "s" and refused in messages[0]["data"]["message"]


def test_the_browser_may_change_per_question_settings(settings, web):
    session = Session(Config.load(settings))
    messages = list(session.run({"id": "s", "type": "ask", "question": QUESTION,
                                 "settings": {"max_pages": 1, "top_k": 2, "llm": False}}, "browser"))
    result = fold_events(_events(messages))
    assert "fatal" not in result and len(result["sources"]) == 1


@pytest.mark.parametrize("request_sent, message", [
    ([1, 2], "a JSON object, not a list"),
    ({"type": "ask", "question": "q"}, "lacks the field 'id'"),
    ({"id": 5, "type": "ask", "question": "q"}, "'id' of a request must be a string"),
    ({"id": "r", "type": "shutdown"}, "unknown request type 'shutdown'"),
    ({"id": "r", "type": "ask"}, "lacks the field 'question'"),
    ({"id": "r", "type": "ask", "question": 3}, "'question' of an ask request must be a string, not a number"),
    ({"id": "r", "type": "ask", "question": "q", "rm": 1}, "unknown field rm"),
    ({"id": "r", "type": "ask", "question": "q" * 5000}, "too long: 5,000 characters"),
    ({"id": "r", "type": "index", "urls": "http://a.example/"}, "'urls' of an index request must be a list"),
    ({"id": "r", "type": "index", "urls": [3]}, "urls must be a list of URL strings"),
    ({"id": "r", "type": "ask_page", "question": "q", "page": {"url": "https://a.example/"}}, "lacks the field 'html'"),
    ({"id": "r", "type": "ask_page", "question": "q", "page": {"url": "file:///etc/passwd", "html": "x"}},
     "http or https"),
    ({"id": "r", "type": "ask_page", "question": "q", "page": {"url": "https://a.example/", "html": "x" * 10_000_001}},
     "'html' of a page is too long"),
    ({"id": "r", "type": "cancel"}, "lacks the field 'target'"),
])
def test_a_malformed_request_gets_an_error_naming_the_problem(settings, request_sent, message):
    session = Session(Config.load(settings))
    inbox = Inbox()
    session.handle(request_sent, "browser", inbox.deliver)
    (reply,) = inbox.messages
    assert reply["type"] == "error" and reply["data"]["kind"] == "protocol"
    assert message in reply["data"]["message"]
    assert reply["id"] == (request_sent.get("id") if isinstance(request_sent, dict) and
                           isinstance(request_sent.get("id"), str) else None)


def test_ping_and_status(settings):
    session = Session(Config.load(settings))
    pong = list(session.run({"id": "p", "type": "ping"}, "browser"))
    assert [m["type"] for m in pong] == ["pong", "done"] and pong[0]["data"]["protocol"] == 1
    status = list(session.run({"id": "s", "type": "status"}, "browser"))
    assert [m["type"] for m in status] == ["status", "done"]
    assert status[0]["data"]["running"] == 0 and status[0]["data"]["workers"] == 2


def test_the_browsers_page_is_answered_from_alone_by_default(settings):
    html = ("<html><head><title>Team notes</title></head><body><article><p>The quarterly planning "
            "meeting of the Fenwick orchard cooperative moved to Thursday 9 May at the old mill, "
            "because the barn roof is being repaired by the volunteers this spring.</p></article></body></html>")
    session = Session(Config.load(settings))
    messages = list(session.run({"id": "p", "type": "ask_page", "question": "Where is the planning meeting?",
                                 "page": {"url": "https://intranet.example/notes", "title": "Team notes",
                                          "html": html, "selection": "the old mill"}}, "browser"))
    result = fold_events(_events(messages))
    assert [s["url"] for s in result["sources"]] == ["https://intranet.example/notes"]
    assert "old mill" in result["citations"][0]["quote"]
    assert not any(m["type"] == "search_results" for m in messages)


def _events(messages):
    from localsearch.session import events_of

    return list(events_of(iter(messages)))


def test_cancelling_one_request_leaves_the_other_running(settings, web):
    gate = Gate()
    with registered(gate, "gate"):
        session = Session(Config.load(settings))
        inbox = Inbox()
        session.handle({"id": "held", "type": "ask", "question": "x", "settings": {"engines": ["gate"]}},
                       "browser", inbox.deliver)
        assert gate.entered.acquire(timeout=30)
        session.handle({"id": "kept", "type": "ask", "question": QUESTION}, "browser", inbox.deliver)
        session.handle({"id": "c", "type": "cancel", "target": "held"}, "browser", inbox.deliver)
        assert inbox.end_of("held", timeout=5)["data"]["kind"] == "cancelled"
        kept = inbox.end_of("kept")
        gate.open.set()
    assert kept["type"] == "done"
    assert any(m["type"] == "answer" and m["data"]["citations"] for m in inbox.of("kept"))


def test_a_client_that_cannot_be_reached_has_its_request_stopped(settings):
    """A transport whose send raises (a broken pipe) has lost its client: the request stops
    and frees its worker, which then serves the next request."""
    gate = Gate()
    with registered(gate, "gate"):
        session = Session(Config.load({**settings, "engines": ["gate"], "search_timeout": 30.0,
                                       "serve_workers": 1}))
        sent: list[dict] = []

        def gone_after_two(message):
            sent.append(message)
            if len(sent) > 2:
                raise BrokenPipeError("the client went away")
            return True

        session.handle({"id": "q", "type": "ask", "question": "x"}, "browser", gone_after_two)
        deadline = time.monotonic() + 10
        while (len(sent) < 3 or session._running) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sent) >= 3 and not session._running, "the request of a vanished client still holds its slot"
        gate.open.set()
        inbox = Inbox()
        session.handle({"id": "next", "type": "ask", "question": QUESTION, "settings": {"engines": ["searxng"]}},
                       "browser", inbox.deliver)
        assert inbox.end_of("next")["type"] == "done"


def test_a_request_waiting_for_a_busy_model_can_be_cancelled(settings):
    from localsearch import components

    session = Session(Config.load({**settings, "llm": True, "max_tokens": 8}))
    model, why = components.chat_model(session.pipeline.config)
    assert model is not None, why
    model.load()
    inbox = Inbox()
    with model._busy:  # another question is generating
        session.handle({"id": "w", "type": "ask", "question": QUESTION}, "browser", inbox.deliver)
        inbox.wait(lambda m: m["id"] == "w" and m["type"] == "stage_start" and m["data"]["stage"] == "answer", 60)
        time.sleep(0.3)
        started = time.monotonic()
        session.handle({"id": "c", "type": "cancel", "target": "w"}, "browser", inbox.deliver)
        ended = inbox.end_of("w", timeout=5)
        assert ended["data"]["kind"] == "cancelled" and time.monotonic() - started < 1.0
    assert not any(m["type"] == "answer_delta" for m in inbox.of("w"))


def test_unloading_a_model_waits_for_no_one(home):
    """Past loaded_models the least recently used model is closed after its generation, on a
    thread of its own: nobody waits for that close."""
    from localsearch import components

    closing = threading.Event()

    class Slow:
        def __init__(self, name):
            self.name = name

        def close(self):
            closing.set()
            time.sleep(3)  # a generation still running

    class SlowModels:
        @hookimpl(tryfirst=True)
        def chat_model(self, config):
            return Slow(config.model or "none")

    with registered(SlowModels(), "slow-models"):
        config = Config.load({"loaded_models": 1})
        components.chat_model(config.replace(model="first"))
        started = time.monotonic()
        second, _ = components.chat_model(config.replace(model="second"))
        assert second.name == "second" and closing.wait(5)
        assert [m["name"] for m in components.loaded() if m["kind"] == "chat_model"] == ["second"]
        assert time.monotonic() - started < 1.0


def strict(constant):
    raise AssertionError(f"{constant} is not JSON a browser can parse")


def test_the_socket_transport_survives_values_json_does_not_know(settings, tmp_path):
    """An engine whose results carry bytes and numpy numbers: the stream still ends, in JSON a
    browser can parse (NaN goes as null), and the worker is free for the next request."""
    import json
    import socket

    import numpy

    from localsearch.server import _Server, encode

    assert json.loads(encode({"id": "n", "type": "x", "data": {"score": float("nan")}}),
                      parse_constant=strict)["data"] == {"score": None}

    class Odd:
        @hookimpl
        def register_search_engines(self, register):
            class Engine:
                name = "odd"

                def search(self, query, limit, context):
                    return [SearchResult(url="https://odd.example/", snippet=b"raw bytes",
                                         score=numpy.float32(0.5))]

            register(Engine())

    with registered(Odd(), "odd"):
        session = Session(Config.load({**settings, "engines": ["odd"], "serve_workers": 1}))
        path = tmp_path / "s.sock"
        server = _Server(path, session, lambda message: None)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with socket.socket(socket.AF_UNIX) as connection:
                connection.connect(str(path))
                connection.settimeout(30)  # a stream that never ends fails the test, not hangs it
                replies = connection.makefile("rb")
                for id in ("1", "2"):
                    connection.sendall(json.dumps({"id": id, "type": "search", "query": "q"}).encode() + b"\n")
                    while True:
                        reply = json.loads(replies.readline(), parse_constant=strict)
                        if reply["type"] == "search_results":
                            assert reply["data"]["results"][0]["snippet"] == "raw bytes"
                        if reply["type"] in ("done", "error"):
                            break
                    assert reply["id"] == id
        finally:
            server.shutdown()
            server.server_close()


def test_the_socket_is_born_private(settings, tmp_path, monkeypatch):
    """Bound under a private umask: private before any chmod could make it so."""
    import os
    import stat

    from localsearch.server import _Server

    monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
    path = tmp_path / "s.sock"
    server = _Server(path, Session(Config.load(settings)), lambda message: None)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        server.server_close()


def test_the_browser_may_not_ask_for_a_thousand_pages(settings):
    session = Session(Config.load(settings))
    for name, value in (("max_pages", 1000), ("max_tokens", 100_000), ("engines", ["x"] * 2000)):
        (reply,) = session.run({"id": "s", "type": "ask", "question": QUESTION, "settings": {name: value}}, "browser")
        assert reply["type"] == "error" and name in reply["data"]["message"]
