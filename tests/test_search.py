"""The SearXNG engine against the test web's endpoint and its broken twins."""

from __future__ import annotations

import pytest

from localsearch.errors import SearchEngineError
from localsearch.pipeline import Pipeline
from localsearch.search import EngineContext


def test_searxng_results_come_back_ranked(home, web):
    pipeline = Pipeline(searxng_url=web.url)
    hits = pipeline.engines["searxng"].search("Harrowmere lighthouse keeper", 5, EngineContext(pipeline.config, None, None))
    assert hits and hits[0].url == web.url + "/articles/harrowmere-lighthouse"
    assert all(hit.engine == "searxng" and hit.title for hit in hits)


@pytest.mark.parametrize("instance, message", [
    ("/garbage", "did not answer with SearXNG JSON"),
    ("/wrongshape", "did not answer with SearXNG JSON"),
    ("/down", "HTTP 503"),
])
def test_broken_searxng_is_a_clear_engine_error(home, web, instance, message):
    pipeline = Pipeline(searxng_url=web.url + instance)  # these instances answer /search badly
    with pytest.raises(SearchEngineError, match=message):
        pipeline.engines["searxng"].search("lighthouse", 5, EngineContext(pipeline.config, None, None))


def test_unreachable_searxng_is_reported_and_others_answer(home, web):
    pipeline = Pipeline(searxng_url="http://127.0.0.1:9", engines=["searxng", "local"])
    results, report = pipeline.search(["lighthouse"], ["searxng"])
    assert results == [] and report["searxng"]["status"] == "error"
    assert "cannot reach http://127.0.0.1:9" in report["searxng"]["error"]
