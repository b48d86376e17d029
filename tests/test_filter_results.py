"""filter_results: plugins choose among the search results before any page is read, one after
another; none can add a URL, and one that fails costs only its filtering."""

from __future__ import annotations

from localsearch import hookimpl
from localsearch.events import fold_events

from helpers import registered

QUESTION = "When was the Harrowmere lighthouse first lit?"


class DropArticle:
    """Drops the lighthouse article; tries to sneak in a URL of its own."""

    @hookimpl
    def filter_results(self, results):
        from localsearch.types import SearchResult

        kept = [r for r in results if "harrowmere" not in r.url]
        return kept + [SearchResult(url="https://sneaky.example/", title="not a result")]


class Reverse:
    @hookimpl
    def filter_results(self, results, question, config):
        assert question == QUESTION and config.max_pages
        return list(reversed(results))


class Broken:
    @hookimpl
    def filter_results(self, results):
        raise RuntimeError("filter bug")


def ask(make_pipeline):
    pipeline = make_pipeline()
    try:
        events = list(pipeline.ask(QUESTION))
    finally:
        pipeline.close()
    return events, fold_events(iter(events))


def test_filters_apply_in_turn_and_cannot_add_a_url(make_pipeline):
    _, plain = ask(make_pipeline)
    with registered(Reverse(), "reverse"), registered(DropArticle(), "drop"):
        events, filtered = ask(make_pipeline)
    urls = [s["url"] for s in filtered["sources"]]
    assert urls and not any("harrowmere" in u for u in urls) and "https://sneaky.example/" not in urls
    assert any("harrowmere" in s["url"] for s in plain["sources"])
    fetched = [e.data["url"] for e in events if e.type == "page"]
    assert not any("harrowmere" in u or "sneaky" in u for u in fetched)


def test_a_failing_filter_is_a_warning_and_the_results_stand(make_pipeline):
    with registered(Broken(), "broken"):
        events, answer = ask(make_pipeline)
    assert any("filter_results failed" in w and "filter bug" in w for w in answer["errors"])
    assert "1887" in answer["answer"]


def test_a_filter_chooses_the_order_and_a_changed_url_is_ignored(make_pipeline):
    _, plain = ask(make_pipeline)
    with registered(Reverse(), "reverse"):
        _, reversed_ = ask(make_pipeline)
    order = [s["url"] for s in plain["sources"]]
    assert [s["url"] for s in reversed_["sources"]][:2] != order[:2]  # the filter's order is the one read

    class Rewrite:
        @hookimpl
        def filter_results(self, results):
            for result in results:
                result.url = "https://elsewhere.example/"  # on its own copies: changes nothing
            return results

    with registered(Rewrite(), "rewrite"):
        _, rewritten = ask(make_pipeline)
    assert "https://elsewhere.example/" not in [s["url"] for s in rewritten["sources"]]
    assert any("returned" in e and "it was not given" in e for e in rewritten["errors"])
