"""The threads a pipeline's questions wait on: no event loop of its own per question,
``fetch_concurrency`` for every kind of fetcher, a bounded number of engine threads, and no
work left running for a question that has ended. Written against ``Pipeline`` (and the
search module's limit) alone."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from localsearch import hookimpl
from localsearch import pipeline as pipeline_module
from localsearch.pipeline import fold_events
from localsearch.plugins import pm
from localsearch.types import FetchStatus, Page

from helpers import Gate, registered

QUESTION = "When was the Harrowmere lighthouse first lit?"


def test_an_asyncio_program_can_ask(make_pipeline):
    """No event loop per question: a caller that runs its own (a web app, a notebook) can ask."""
    pipeline = make_pipeline()

    async def main():
        return fold_events(pipeline.ask(QUESTION))

    result = asyncio.run(main())
    assert "fatal" not in result, result.get("fatal")
    assert result["citations"]


class CountingFetcher:
    """A blocking fetcher that notes how many of its calls run at once."""

    def __init__(self):
        self.running = self.most = 0
        self.lock = threading.Lock()

    @hookimpl(tryfirst=True)
    def fetch_page(self, url):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.4)
        with self.lock:
            self.running -= 1
        return Page(url=url, status=FetchStatus.HTTP_ERROR, reason="counted")


@pytest.mark.parametrize("concurrency", [2, 10])
def test_fetch_concurrency_holds_for_blocking_fetchers(make_pipeline, web, concurrency):
    urls = [f"{web.url}/status/404?n={i}" for i in range(10)]
    counting, engine = CountingFetcher(), Gate(urls)
    engine.open.set()
    with registered(counting, "counting-fetcher"), registered(engine, "gate"):
        events = list(make_pipeline(engines=["gate"], max_pages=10, fetch_concurrency=concurrency).ask(QUESTION))
    assert [e.data["reason"] for e in events if e.type == "page"] == ["counted"] * 10
    assert counting.most == concurrency


def test_an_async_fetcher_can_decline_a_url(make_pipeline, web):
    class Picky:
        asked: list[str] = []

        @hookimpl(tryfirst=True)
        async def fetch_page(self, url):
            self.asked.append(url)
            if "harrowmere" in url:
                return None  # not mine: the built-in fetcher reads it
            return Page(url=url, status=FetchStatus.HTTP_ERROR, reason="picky said no")

    with registered(Picky(), "picky"):
        result = fold_events(make_pipeline(max_pages=3).ask(QUESTION))
    status = {s["url"].rsplit("/", 1)[1]: (s["status"], s["reason"]) for s in result["sources"]}
    assert status["harrowmere-lighthouse"] == ("ok", "")
    assert [reason for _, reason in status.values()].count("picky said no") == 2
    assert result["citations"][0]["url"].endswith("/harrowmere-lighthouse")


def test_hung_engines_hold_a_bounded_number_of_threads(make_pipeline):
    from localsearch.search import STUCK_LIMIT as stuck_limit

    gate = Gate()
    with registered(gate, "gate"):
        pipeline = make_pipeline(engines=["gate"], search_timeout=0.2)
        before = threading.active_count()
        for _ in range(12):
            results, report = pipeline.search(["q"], ["gate"])
            assert report["gate"]["status"] == "timeout"
        assert threading.active_count() - before <= stuck_limit + 2
        gate.open.set()
        deadline = time.monotonic() + 5
        while len(gate.late_calls) < stuck_limit and time.monotonic() < deadline:
            time.sleep(0.05)
        assert set(gate.late_calls) == {"Cancelled"}, "engines abandoned at their timeout still used the embedder"


def test_a_hung_engine_never_stops_the_others(make_pipeline, web):
    gate = Gate()
    with registered(gate, "gate"):
        pipeline = make_pipeline(engines=["gate", "searxng"], search_timeout=0.5)
        for _ in range(3 * pipeline_module.ENGINE_THREADS):
            results, report = pipeline.search(["Harrowmere lighthouse"], ["gate", "searxng"])
            assert report["searxng"]["status"] == "ok" and results, report
            assert report["gate"]["status"] == "timeout"
        assert "have not returned yet" in report["gate"]["error"]
        gate.open.set()


def test_a_resolver_that_hangs_costs_the_page_its_time_limit(make_pipeline, web, monkeypatch):
    from localsearch.urlpolicy import UrlPolicy

    real = UrlPolicy.resolve

    def slow(host, port):
        if host == "slow-dns.example":
            time.sleep(6)
        return real(host, port)

    monkeypatch.setattr(UrlPolicy, "resolve", staticmethod(slow))
    urls = ["http://slow-dns.example/page", web.url + "/articles/harrowmere-lighthouse"]
    engine = Gate(urls)
    engine.open.set()
    with registered(engine, "gate"):
        started = time.monotonic()
        result = fold_events(make_pipeline(engines=["gate"], fetch_timeout=1.0).ask(QUESTION))
    status = {s["url"]: s["status"] for s in result["sources"]}
    assert status == {urls[0]: "timeout", urls[1]: "ok"} and result["citations"]
    assert time.monotonic() - started < 5.5


def test_a_failure_storing_pages_after_the_answer_costs_the_index_not_the_answer(make_pipeline):
    class FullDisk:
        @hookimpl(tryfirst=True)
        def vector_store(self, config, embedder_name):
            real = pm.get_plugin("chroma").vector_store(config=config, embedder_name=embedder_name)

            class Failing:
                def __getattr__(self, name):
                    return getattr(real, name)

                def add_document(self, *args):
                    raise OSError(28, "No space left on device")

            return Failing()

    with registered(FullDisk(), "full-disk"):
        pipeline = make_pipeline()
        events = list(pipeline.ask(QUESTION))
        result = fold_events(events)
        assert events[-1].type == "done" and "fatal" not in result
        assert result["citations"]
        assert pipeline.indexer.drain(120)  # the pages are stored in the background: it fails there
        later = fold_events(pipeline.ask(QUESTION))  # and the next question says so
    assert "fatal" not in later and later["citations"]
    assert any("could not be stored in the index" in e and "No space left" in e for e in later["errors"])
