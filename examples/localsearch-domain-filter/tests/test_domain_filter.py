"""The domain filter on a pipeline whose engine mixes the local web with other sites."""

from __future__ import annotations

import pytest

import localsearch_domain_filter as domain_filter
from localsearch import hookimpl
from localsearch.testing import localsearch_answer
from localsearch.types import SearchResult

ELSEWHERE = ["https://www.contentfarm.example/lighthouse-facts", "https://news.example.org/harrowmere"]


class MixedEngine:
    """Results from content farms and news sites first, then the local web's own."""

    name = "mixed"

    def __init__(self, web):
        self.web = web

    def search(self, query, limit, context):
        local = [SearchResult(url=hit["url"], title=hit["title"]) for hit in self.web.search(query)]
        return [SearchResult(url=url, title="elsewhere") for url in ELSEWHERE] + local


class Engines:
    def __init__(self, web):
        self.web = web

    @hookimpl
    def register_search_engines(self, register):
        register(MixedEngine(self.web))


@pytest.fixture
def ask(localsearch_web, localsearch_pipeline):
    localsearch_web.add_page("/lighthouse", "Harrowmere lighthouse",
                             "The Harrowmere lighthouse was first lit on 9 October 1887, after two years of "
                             "building on the rocks of the point. Its keepers kept the light burning every night "
                             "until the lamp was automated in 1962.")

    def ask(**settings):
        pipeline = localsearch_pipeline(domain_filter, Engines(localsearch_web), engines=["mixed"], **settings)
        events = list(pipeline.ask("When was the Harrowmere lighthouse first lit?"))
        read = [event.data["url"] for event in events if event.type == "page"]
        return read, localsearch_answer(pipeline, "When was the Harrowmere lighthouse first lit?")

    return ask


def test_without_settings_every_result_is_read(ask):
    read, _ = ask()
    assert set(ELSEWHERE) <= set(read)


def test_a_blocked_domain_and_its_subdomains_are_never_read(ask, localsearch_web):
    read, answer = ask(blocked_domains=["contentfarm.example"])
    assert ELSEWHERE[0] not in read and ELSEWHERE[1] in read
    assert "1887" in answer["answer"]


def test_allowed_domains_keep_only_those(ask, localsearch_web):
    read, answer = ask(allowed_domains=[localsearch_web.host])
    assert read == [localsearch_web.url + "/lighthouse"]
    assert answer["citations"][0]["url"] == localsearch_web.url + "/lighthouse"


def test_domains_match_whole_labels_only():
    assert domain_filter.on("news.example.org", ["example.org"])
    assert not domain_filter.on("badexample.org", ["example.org"])
    assert domain_filter.on("EXAMPLE.org.", ["example.org"])
