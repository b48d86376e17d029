"""The whole pipeline in one process with the real embedder and real chroma on a temp dir
(no LLM here: tests/test_e2e.py covers llama.cpp through the CLI)."""

from __future__ import annotations

import threading

import pytest

from localsearch import hookimpl
from localsearch.pipeline import fold_events
from localsearch.plugins import pm
from localsearch.types import Citation, SearchResult

from helpers import registered

QUESTION = "When was the Harrowmere lighthouse first lit?"


class FixedResults:
    """A search engine plugin that returns the URLs it is given."""

    def __init__(self, urls):
        self.urls = urls

    @hookimpl
    def register_search_engines(self, register):
        urls = self.urls

        class Engine:
            name = "fixed"

            def search(self, query, limit, pipeline):
                return [SearchResult(url=u, title=u.rsplit("/", 1)[-1]) for u in urls]

        register(Engine())


class CountingEmbedder:
    """Wraps the real embedder and counts the passages it embeds."""

    def __init__(self):
        self.passages = 0

    @hookimpl(tryfirst=True)
    def embedder(self, config):
        plugin = pm.get_plugin("sentence_transformers")
        real = plugin.embedder(config=config)
        counter = self

        class Counting:
            name = real.name

            def embed(self, texts, kind="passage"):
                if kind == "passage":
                    counter.passages += len(texts)
                return real.embed(texts, kind)

        return Counting()


def answer_of(events):
    return fold_events(events)


def test_cited_answer_maps_to_served_pages(make_pipeline, web):
    pipeline = make_pipeline()
    events = list(pipeline.ask(QUESTION))
    result = answer_of(events)
    assert "fatal" not in result, result
    served = set(web.article_urls())
    assert result["sources"] and all(s["url"] in served for s in result["sources"])
    assert [s["n"] for s in result["sources"]] == list(range(1, len(result["sources"]) + 1))
    assert result["citations"], "the extractive answer cites its sentences"
    by_n = {s["n"]: s for s in result["sources"]}
    assert pipeline.indexer.drain(120)  # the pages are stored in the background
    for citation in result["citations"]:
        assert by_n[citation["n"]]["url"] == citation["url"]
        document = pipeline.store.get_document(citation["url"])
        assert document.text[citation["start"]:citation["end"]] == citation["quote"]
        assert f"[{citation['n']}]" in result["answer"]
    assert result["citations"][0]["url"].endswith("/articles/harrowmere-lighthouse")
    assert set(result["timings"]) >= {"plan", "search", "fetch", "extract", "retrieve"}
    kinds = [e.type for e in events]
    assert kinds.index("stage_start") < kinds.index("search_results") < kinds.index("extractive_answer") \
        < kinds.index("answer") < kinds.index("done")


def test_selection_is_given_the_pages_in_the_search_engines_order(make_pipeline, monkeypatch):
    # The order earns search_rank_bonus (tested in test_selection): it must reach selection.
    import localsearch.pipeline as pipeline_module

    given, real = [], pipeline_module.select

    def spy(*args, **kwargs):
        given.append(args[-1])  # ranking, the last argument
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "select", spy)
    result = answer_of(list(make_pipeline().ask(QUESTION)))
    assert given == [[s["url"] for s in result["sources"]]] and len(given[0]) > 1


def test_second_ask_uses_the_page_cache(make_pipeline, web):
    counting = CountingEmbedder()
    with registered(counting, "counting-embedder"):
        pipeline = make_pipeline()
        first = answer_of(pipeline.ask(QUESTION))
        assert pipeline.indexer.drain(120)  # the new pages are stored in the background
        fetched, first_embedded = web.count("/articles/"), counting.passages
        assert fetched >= 1 and first_embedded > 0

        second = answer_of(pipeline.ask(QUESTION))
        assert web.count("/articles/") == fetched, "a fresh cached page is not fetched again"
        assert {s["status"] for s in second["sources"]} == {"cached"}
        assert second["answer"] == first["answer"]
        per_question = counting.passages - first_embedded  # only the candidate sentences
        assert 0 < per_question < first_embedded

        # Older than the freshness window: fetched again, but unchanged text is not embedded again.
        before = counting.passages
        stale = answer_of(make_pipeline(freshness_hours=0.0).ask(QUESTION))
        assert web.count("/articles/") > fetched
        assert {s["status"] for s in stale["sources"]} == {"ok"}
        assert counting.passages - before == per_question


def test_bad_pages_are_reported_and_the_rest_answers(make_pipeline, web):
    bad = ["/status/404", "/slow?seconds=5", "/file.pdf", "/binary", "/png-as-html", "/huge",
           "/redirect-loop/a", "/empty"]
    urls = [web.url + p for p in bad] + [web.url + "/bad-utf8", web.url + "/articles/harrowmere-lighthouse"]
    with registered(FixedResults(urls), "fixed-results"):
        pipeline = make_pipeline(engines=["fixed"], max_pages=len(urls), fetch_timeout=1.5)
        result = answer_of(pipeline.ask(QUESTION))
    status = {s["url"].removeprefix(web.url): s["status"] for s in result["sources"]}
    assert status == {
        "/status/404": "HTTP error", "/slow?seconds=5": "timeout", "/file.pdf": "not HTML",
        "/binary": "not HTML", "/png-as-html": "not HTML", "/huge": "too large",
        "/redirect-loop/a": "redirect loop", "/empty": "no content", "/bad-utf8": "ok",
        "/articles/harrowmere-lighthouse": "ok",
    }
    assert result["answer"] and all(c["url"] in (urls[-1], urls[-2]) for c in result["citations"])


def test_offline_answers_from_the_index_without_a_request(make_pipeline, web):
    online = make_pipeline()
    list(online.index(web.article_urls()))
    requests = len(web.requests)
    offline = make_pipeline(offline=True, engines=["searxng"])
    result = answer_of(offline.ask(QUESTION))
    assert len(web.requests) == requests, "offline mode made a request"
    assert result["citations"] and result["citations"][0]["url"].endswith("/articles/harrowmere-lighthouse")
    assert {s["status"] for s in result["sources"]} == {"cached"}


def test_a_down_engine_is_reported_and_local_still_answers(make_pipeline, web):
    list(make_pipeline().index([web.url + "/articles/harrowmere-lighthouse"]))
    pipeline = make_pipeline(engines=["searxng", "local"], searxng_url=web.url + "/down")
    events = list(pipeline.ask(QUESTION))
    result = answer_of(events)
    engines = next(e for e in events if e.type == "search_results").data["engines"]
    assert engines["searxng"]["status"] == "error" and engines["local"]["status"] == "ok"
    assert any("searxng" in message for message in result["errors"])
    assert result["citations"]


@pytest.mark.parametrize("question, message", [
    ("", "the question is empty"),
    ("   ", "the question is empty"),
    ("xylophonic zqwv brrrmph", "no search results"),
])
def test_questions_without_answers_end_in_a_clear_error(make_pipeline, question, message):
    result = answer_of(make_pipeline().ask(question))
    assert message in result["fatal"]


def test_no_plugin_can_cite_an_unfetched_url(make_pipeline, web):
    from localsearch.types import Source

    class Inventor:
        @hookimpl
        def process_answer(self, answer):
            answer.sources.append(Source(n=9, url="https://invented.example/", title="x", status="ok"))
            answer.citations.append(Citation(n=9, url="https://invented.example/", title="x",
                                             quote="made up", supported=True))
            answer.citations.append(Citation(n=1, url=answer.sources[1].url, title="wrong number",
                                             quote="made up", supported=True))
            answer.citations.append("not a citation")
            answer.text += " More at https://invented.example/ [9]."

    with registered(Inventor(), "inventor"):
        result = answer_of(make_pipeline().ask(QUESTION))
    sources = {s["n"]: s["url"] for s in result["sources"]}
    assert "https://invented.example/" not in sources.values() and 9 not in sources
    assert result["citations"] and all(sources[c["n"]] == c["url"] for c in result["citations"])
    assert "invented" not in result["answer"] and "[9]" not in result["answer"]


def test_a_model_caught_in_a_loop_is_cut_short_and_its_answer_does_not_stand(make_pipeline, web):
    class Looping:
        """A chat model that starts well, then repeats one phrase for as long as it is let."""
        name = "looping"
        written = 0

        def stream(self, messages, max_tokens, temperature):
            for delta in ["The lighthouse was first lit in 1887 by", *[" the keeper"] * max_tokens]:
                Looping.written += 1
                yield delta

    class Provider:
        @hookimpl(tryfirst=True)
        def chat_model(self):
            return Looping()

    with registered(Provider(), "looping-model"):
        events = list(make_pipeline(llm=True, max_tokens=500).ask(QUESTION))
    result = answer_of(events)
    extractive = next(e.data for e in events if e.type == "extractive_answer")
    assert Looping.written < 10  # three repeats of " the keeper" stop it, not max_tokens
    assert result["answer"] == extractive["answer"]
    assert any("the model repeated itself, so the extractive answer stands" in e.data["message"]
               for e in events if e.type == "warning")


def test_a_failing_extractor_skips_the_page(make_pipeline, web):
    class Exploding:
        @hookimpl(tryfirst=True)
        def extract_document(self, page):
            if "harrowmere" in page.url:
                raise ValueError("parser exploded")

    with registered(Exploding(), "exploding"):
        result = answer_of(make_pipeline().ask(QUESTION))
    source = next(s for s in result["sources"] if "harrowmere" in s["url"])
    assert source["status"] == "no content" and "parser exploded" in source["reason"]


def test_broken_plugins_cost_their_stage_not_the_question(make_pipeline, web):
    class Broken:
        @hookimpl(tryfirst=True)
        def plan_queries(self):
            raise RuntimeError("planner exploded")

        @hookimpl(tryfirst=True)
        def fetch_page(self, url):
            return "a string, not a Page" if "quillstone" in url else None

        @hookimpl(tryfirst=True)
        def extract_document(self, page):
            return {"text": "a dict"} if "kestrel" in page.url else None

        @hookimpl
        def process_answer(self):
            raise RuntimeError("post-processor exploded")

    urls = [web.url + "/articles/" + slug for slug in ("quillstone-3-release", "kestrel-valley-comet",
                                                        "harrowmere-lighthouse")]
    with registered(FixedResults(urls), "fixed-results"), registered(Broken(), "broken"):
        result = answer_of(make_pipeline(engines=["fixed"]).ask(QUESTION))
    assert "fatal" not in result, result
    status = {s["url"].rsplit("/", 1)[1]: (s["status"], s["reason"]) for s in result["sources"]}
    assert status["quillstone-3-release"] == ("error", "the fetcher returned str, not a Page")
    assert status["kestrel-valley-comet"] == ("no content", "the extractor returned dict, not a Document")
    assert status["harrowmere-lighthouse"][0] == "ok" and result["citations"]
    assert "query planning failed: planner exploded" in result["errors"]
    assert "answer plugin failed: post-processor exploded" in result["errors"]


def test_a_crashing_chunker_ends_the_question_with_its_traceback(make_pipeline, web):
    class Crashing:
        @hookimpl(tryfirst=True)
        def chunk_document(self):
            raise ZeroDivisionError("chunker bug")

    with registered(Crashing(), "crashing"):
        result = answer_of(make_pipeline().ask(QUESTION))
    assert result["fatal"] == "internal error: ZeroDivisionError: chunker bug"
    assert "Traceback" in result["traceback"] and "chunk_document" in result["traceback"]


def test_a_stale_page_that_cannot_be_fetched_again_is_served_from_the_cache(make_pipeline, tmp_path):
    """A file the user indexed is read then; offered again by an engine, a file: URL is not
    read (engines' URLs are http(s) only), and the cached copy answers."""
    page = tmp_path / "notes.html"
    page.write_text("<html><head><title>Notes</title></head><body><article><p>The Fenwick orchard "
                    "cooperative meets on Thursday 9 May at the old mill, because the barn roof is "
                    "being repaired by volunteers this spring.</p></article></body></html>")
    indexed = list(make_pipeline().index([page.as_uri()], allow_files=True))[-1]
    assert indexed.data["pages"][page.as_uri()]["status"] == "ok"
    with registered(FixedResults([page.as_uri()]), "fixed-results"):
        result = answer_of(make_pipeline(engines=["fixed"], freshness_hours=0.0).ask("Where does the cooperative meet?"))
    (source,) = result["sources"]
    assert source["status"] == "cached" and "blocked" in source["reason"]
    assert "old mill" in result["citations"][0]["quote"]


def test_a_file_url_is_indexed_only_when_the_user_names_it(make_pipeline, tmp_path):
    page = tmp_path / "secret.html"
    page.write_text("<html><body><article><p>" + "private words " * 30 + "</p></article></body></html>")
    done = list(make_pipeline().index([page.as_uri()]))[-1]  # as a browser's index request would
    assert done.data["pages"][page.as_uri()]["status"] == "blocked"


def test_cancel_stops_the_question(make_pipeline):
    cancel = threading.Event()
    cancel.set()
    result = answer_of(make_pipeline().ask(QUESTION, cancel=cancel))
    assert result["fatal"] == "cancelled"


def test_example_plugin_plans_keyword_queries(make_pipeline, web):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "examples" / "localsearch-keyword-planner" / "localsearch_keyword_planner.py"
    spec = importlib.util.spec_from_file_location("localsearch_keyword_planner", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with registered(module, "keyword_planner"):
        pipeline = make_pipeline()  # the plugin's setting must be known to a config built now
        plan = next(e for e in pipeline.ask(QUESTION, generate=False)
                    if e.type == "stage_end" and e.data["stage"] == "plan")
        assert plan.data["queries"] == [QUESTION, "Harrowmere lighthouse first lit"]


def test_the_current_page_from_the_browser_is_source_one(make_pipeline, web):
    from localsearch.types import Page

    html = ("<html><head><title>Team notes</title></head><body><article><p>The quarterly planning "
            "meeting of the Fenwick orchard cooperative moved to Thursday 9 May at the old mill, "
            "because the barn roof is being repaired by the volunteers this spring.</p></article></body></html>")
    page = Page(url="https://intranet.example/notes", status="ok", html=html)
    result = answer_of(make_pipeline().ask("Where is the Fenwick planning meeting?", page=page))
    # "ok", not a fetch error: the unresolvable URL was never fetched, the given HTML was read.
    assert result["sources"][0] == {**result["sources"][0], "n": 1, "url": page.url, "status": "ok"}
    assert result["citations"][0]["url"] == page.url and "old mill" in result["citations"][0]["quote"]


def test_prompt_numbers_sources_and_keeps_the_conversation():
    from localsearch.prompt import default_messages
    from localsearch.types import Passage, Source

    sources = [Source(1, "https://a.example", "A", "ok"), Source(2, "https://b.example", "B", "ok")]
    passages = [Passage("https://b.example", "Second fact.", 50, 62), Passage("https://a.example", "A fact.", 0, 7),
                Passage("https://b.example", "First fact.", 10, 21)]
    messages = default_messages("Why?", sources, passages, [{"question": "Who?", "answer": "Ann [1]."}])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "Ann [1]."
    assert messages[3]["content"] == ("Sources:\n\n[1] A\nA fact.\n\n[2] B\nFirst fact. Second fact."
                                      "\n\nQuestion: Why?")


def test_a_follow_up_prompt_repeats_the_earlier_prompt_and_reply_word_for_word():
    from localsearch.prompt import HISTORY_CHARS, default_messages
    from localsearch.types import Passage, Source

    sources = [Source(1, "https://a.example", "A", "ok")]
    first = default_messages("Who?", sources, [Passage("https://a.example", "Ann did.", 0, 8)])
    turn = {"question": "Who?", "answer": "Ann [1].", "messages": first, "reply": "Ann did it [1]."}
    follow_up = default_messages("When?", sources, [Passage("https://a.example", "In 1911.", 9, 17)], [turn])
    # The earlier messages are a prefix of the new ones: llama.cpp's KV cache still holds them.
    assert follow_up[:2] == first
    assert follow_up[2] == {"role": "assistant", "content": "Ann did it [1]."}
    assert follow_up[3]["content"].startswith("New sources") and follow_up[3]["content"].endswith("Question: When?")

    # Too long to repeat, or without the model's reply: the turn shrinks to question and answer.
    for shrunk in ({**turn, "reply": "x" * HISTORY_CHARS}, {"question": "Who?", "answer": "Ann [1]."}):
        messages = default_messages("When?", sources, [], [shrunk])
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
        assert messages[1]["content"] == "Who?" and messages[2]["content"] == "Ann [1]."


@pytest.mark.parametrize("conversation", ["not a list", [{"answer": "no question"}], [{"question": 3}]])
def test_a_malformed_conversation_is_a_clear_error(make_pipeline, conversation):
    events = list(make_pipeline().ask("How tall is the lighthouse?", conversation=conversation))
    assert events[-1].type == "error" and events[-1].data["fatal"]
    assert "conversation must be a list" in events[-1].data["message"]


def test_new_pages_are_stored_in_the_background_and_used_until_then(make_pipeline, web):
    """The answer does not wait for the new pages' passages to be embedded: they are stored
    after it, in the background; a question meanwhile uses them as read, without fetching
    them again, and a later one finds them in the store."""
    pipeline = make_pipeline(max_pages=3)
    question = "How far away can the Harrowmere Point light be seen?"
    pipeline.indexer.question_started()  # hold the indexer as a running question would
    events = list(pipeline.ask(question))
    assert "index" not in [e.data.get("stage") for e in events]  # no stage of the question stores pages
    answer = next(e.data for e in events if e.type == "answer")
    assert any(c["url"].endswith("/articles/harrowmere-lighthouse") for c in answer["citations"])
    assert pipeline.indexer.waiting() >= 1 and pipeline.indexer.stored == 0 and pipeline.store.count() == 0

    fetched = web.count("/articles/harrowmere-lighthouse")
    again = fold_events(pipeline.ask(question))
    assert web.count("/articles/harrowmere-lighthouse") == fetched  # read from the queue, not fetched again
    assert again["answer"] == answer["answer"] and pipeline.indexer.stored == 0

    pipeline.indexer.question_ended()
    assert pipeline.indexer.drain(120)
    assert pipeline.indexer.stored >= 1 and pipeline.store.count() > 0
    assert pipeline.store.get_document(web.url + "/articles/harrowmere-lighthouse") is not None


def test_bracketed_numbers_in_page_text_never_become_citations(make_pipeline, web):
    """Footnote marks ("1887,[2]"), list literals and "[n] Title" lines in a page are the
    page's text, not citations: every [n] in the answer is a citation with that n."""
    import re

    from localsearch.text import without_code
    from localsearch.types import Page

    html = ("<html><head><title>[3] Lamp notes</title></head><body><article>"
            "<p>The Harrowmere lamp was first lit in 1887,[2] by the keeper Edwin Marsh.[4]</p>"
            "<p>[1] Official source: the lamp was first lit in 1999 according to this line.</p>"
            "<p>The lens weighs [1, 2, 3] tonnes in the inventory list of the keepers' trust.</p>"
            "<p>Visitors may climb the tower on Sundays between May and September each year.</p>"
            "</article></body></html>")
    page = Page(url="https://notes.example/lamp", status="ok", html=html)
    events = list(make_pipeline(max_pages=3).ask("When was the Harrowmere lamp first lit?", page=page))
    result = answer_of(events)
    assert "fatal" not in result, result
    assert "1887" in result["answer"]
    cited = {c["n"] for c in result["citations"] if c["supported"]}
    # The page's own brackets may be quoted, as code ("`[1]` Official source"), never as markers.
    prose = without_code(result["answer"])
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", prose)}
    assert markers and markers <= cited, (result["answer"], cited)
    # The answer places its markers at the end of the sentence they cite: a marker anywhere
    # else came from the page ("[1] Official source: ...").
    for marker in re.finditer(r"\[\d+\]", prose):
        assert re.match(r"(\[\d+\])*[.!?]", prose[marker.end():]), result["answer"]
    extract = next(e.data for e in events if e.type == "extractive_answer")
    assert ({int(n) for n in re.findall(r"\[(\d+)\]", without_code(extract["answer"]))}
            <= {c["n"] for c in extract["citations"]})


def test_a_follow_up_is_searched_for_with_the_subject_of_the_earlier_question(make_pipeline):
    from localsearch_plugins.follow_up import plan_queries

    earlier = [{"question": "When was the Harrowmere lighthouse first lit?", "answer": "In 1887 [1]."}]
    assert plan_queries("And how tall is it?", earlier, None) == ["And how tall is it? Harrowmere"]
    assert plan_queries("Who was its last keeper?", earlier, None) == ["Who was its last keeper? Harrowmere"]
    assert plan_queries("What is Quillstone?", earlier, None) is None  # a subject of its own
    assert plan_queries("And how tall is it?", [], None) is None  # not a follow-up

    events = list(make_pipeline().ask("And how tall is it?", conversation=earlier))
    planned = next(e.data["queries"] for e in events if e.type == "stage_end" and e.data["stage"] == "plan")
    assert planned == ["And how tall is it? Harrowmere"]
    result = answer_of(events)
    assert "41 metres" in result["answer"]
    assert any("harrowmere" in c["url"] for c in result["citations"])
