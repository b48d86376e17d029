"""Test fixtures for plugin authors: a local web to search and read, a private data directory,
and pipelines that hold the plugins under test (and the built-ins), nothing else.

localsearch registers these fixtures with pytest (its ``pytest11`` entry point), so a plugin's
tests use them with nothing to import::

    def test_my_engine(localsearch_web, localsearch_pipeline):
        localsearch_web.add_page("/tides", "Tides of Harrow Bay", "High water comes at noon ...")
        pipeline = localsearch_pipeline(MyEnginePlugin(), engines=["my_engine"])
        answer = localsearch.testing.localsearch_answer(pipeline, "When is high water in Harrow Bay?")

Nothing here reaches the internet: the web is a server on 127.0.0.1 with a SearXNG-shaped
``/search`` over the pages a test adds, and the models are the ones installed with localsearch.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

__all__ = ["LocalWeb", "localsearch_answer", "registered"]


@dataclass
class _Page:
    path: str
    title: str
    body: bytes
    content_type: str
    text: str


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


class LocalWeb:
    """A web on 127.0.0.1: pages a test adds, and ``/search?q=...&format=json`` over them in
    SearXNG's JSON shape (point ``searxng_url`` at ``url``)."""

    def __init__(self):
        self.pages: dict[str, _Page] = {}
        self.requests: list[str] = []
        self._lock = threading.Lock()  # the server's threads read the pages a test adds
        web = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with web._lock:
                    web.requests.append(self.path)
                url = urlsplit(self.path)
                if url.path == "/search":
                    query = parse_qs(url.query).get("q", [""])[0]
                    body = json.dumps({"query": query, "results": web.search(query)}).encode()
                    return self._send(200, body, "application/json")
                with web._lock:
                    page = web.pages.get(url.path)
                if page is None:
                    return self._send(404, b"<h1>Not Found</h1>", "text/html; charset=utf-8")
                return self._send(200, page.body, page.content_type)

            def _send(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host, self.port = "127.0.0.1", self._server.server_port
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="localsearch-testing-web",
                                        daemon=True)
        self._thread.start()

    def add_page(self, path: str, title: str, text: str = "", *, html_body: str | None = None,
                 body: bytes | None = None, content_type: str = "text/html; charset=utf-8") -> str:
        """Serve a page at ``path``; returns its URL. ``text`` becomes paragraphs (a blank line
        between them) of an article (a page of fewer than ``min_words`` words, 20, is skipped as
        "no content"); ``html_body`` is the inside of ``<body>`` as given; ``body``
        is served as it is, with ``content_type``."""
        if not path.startswith("/"):
            path = "/" + path
        if body is None:
            inner = html_body if html_body is not None else "<article><h1>{}</h1>{}</article>".format(
                html.escape(title), "".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n\n") if p.strip()))
            body = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
                    f"</head><body>{inner}</body></html>").encode()
        searchable = text or re.sub(r"<[^>]+>", " ", html_body or "")
        with self._lock:
            self.pages[path] = _Page(path, title, body, content_type, searchable)
        return self.url + path

    def search(self, query: str, limit: int = 10) -> list[dict]:
        """The pages that share words with ``query``, best first (TF-IDF on title and text)."""
        terms = set(_words(query))
        with self._lock:
            pages = list(self.pages.values())
        documents = [(page, set(_words(page.title)), _words(page.text)) for page in pages]
        ranked = []
        for page, title_words, words in documents:
            score = 0.0
            for term in terms:
                frequency = sum(term in t or term in w for _, t, w in documents)
                count = words.count(term)
                if frequency and (count or term in title_words):
                    score += math.log((len(documents) + 1) / (frequency + 0.5)) * \
                        ((1 + math.log(count) if count else 0) + 2 * (term in title_words))
            if score > 0:
                ranked.append((score, page))
        ranked.sort(key=lambda pair: -pair[0])
        return [{"url": self.url + page.path, "title": page.title, "content": page.text[:150],
                 "engine": "localweb", "score": round(score, 4)} for score, page in ranked[:limit]]

    def clear(self) -> None:
        with self._lock:
            self.pages.clear()
            self.requests.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def registered(*plugins) -> Iterator[None]:
    """Register plugin objects or modules for the ``with`` block (pass ``(name, plugin)`` to
    name one), checked against the hookspecs as localsearch checks an installed plugin."""
    from .plugins import load_plugins, pm

    load_plugins()  # the built-ins first, as in a real run
    names = []
    try:
        for item in plugins:
            name, plugin = item if isinstance(item, tuple) else (None, item)
            name = name or getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{id(plugin)}"
            pm.register(plugin, name=name)
            pm.check_pending()
            names.append(name)
        yield
    finally:
        for name in names:
            pm.unregister(name=name)


def localsearch_answer(pipeline, question: str, **options) -> dict:
    """Ask ``question`` and return the answer in the shape of ``localsearch ask --json``."""
    from .events import fold_events

    return fold_events(pipeline.ask(question, **options))


@pytest.fixture(scope="session")
def localsearch_web():
    """The local web, for the whole test session; pages a test adds stay until ``clear()``."""
    web = LocalWeb()
    yield web
    web.close()


@pytest.fixture
def localsearch_home(tmp_path, monkeypatch, localsearch_web) -> Path:
    """A private data directory and config file; the local web is allowed (it is on loopback,
    which the URL policy refuses by default); no third-party plugin loads but those a test
    registers (as long as nothing in the test process loaded plugins before: localsearch loads
    them once per process)."""
    for key in [k for k in os.environ if k.startswith("LOCALSEARCH_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("LOCALSEARCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOCALSEARCH_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("LOCALSEARCH_ALLOWED_HOSTS", f"{localsearch_web.host}:{localsearch_web.port}")
    monkeypatch.setenv("LOCALSEARCH_LOAD_PLUGINS", "")
    monkeypatch.setenv("LOCALSEARCH_USE_SERVER", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return tmp_path


@pytest.fixture
def localsearch_pipeline(localsearch_home, localsearch_web):
    """Make a pipeline with the given plugins registered (for this test only) and settings:
    by default it searches the local web through the built-in SearXNG engine, and answers
    without the language model (``llm=True`` to load it)."""
    with ExitStack() as cleanup:  # every pipeline closed, every plugin unregistered, whatever fails

        def make(*plugins, **settings):
            from .pipeline import Pipeline

            cleanup.enter_context(registered(*plugins))
            pipeline = Pipeline(**{"engines": ["searxng"], "searxng_url": localsearch_web.url, "llm": False,
                                   "search_timeout": 5.0, "fetch_timeout": 5.0, **settings})
            cleanup.callback(pipeline.close)
            return pipeline

        yield make
