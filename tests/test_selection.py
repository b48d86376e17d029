"""Sentence selection: what a sentence is read with, and which passages are searched for it."""

import pytest

from localsearch.config import Config
from localsearch.selection import select
from localsearch.types import Passage


@pytest.fixture(scope="module")
def embed():
    from localsearch.plugins import pm

    return pm.hook.embedder(config=Config.load()).embed


def _passage(url, text, **fields):
    return Passage(url=url, text=text, start=0, end=len(text), **fields)


def _scores(question, embed, stored=(), fresh=(), ranking=None, **settings):
    query = embed([question], "query")[0]
    selection = select(question, Config.load(overrides=settings), list(stored), list(fresh), query, embed,
                       ranking=ranking)
    return {c.text: c.score for c in selection.candidates}


def test_the_words_of_a_pages_title_count_for_every_sentence_on_it(embed):
    # Every sentence of the page is about the lighthouse; the one that says who the last
    # keeper was need not repeat its name to answer.
    title = "Harrowmere Point Lighthouse reopens"
    page = _passage("http://a.example/lighthouse", title=title,
                    text="After years of work the Harrowmere Point Lighthouse opened to visitors in March. "
                         "The last keeper, Ezekiel Pardoe, left when the light was automated.")
    other = _passage("http://b.example/ferries", title="Ferries",
                     text="The ferry sails from the harbour below the point every hour.")
    scores = _scores("Who was the last keeper of the Harrowmere Point Lighthouse?", embed, fresh=[page, other])
    best = max(scores, key=scores.get)
    assert best.startswith("The last keeper"), scores


def test_a_definitions_sentence_is_read_with_its_term(embed):
    # "The default is four megabytes" says nothing of work_mem; its term (the <dt>) does.
    fresh = [_passage("http://a.example/memory", "The default value is four megabytes.", kind="definition",
                      section="Resource Consumption › Memory › work_mem (integer)"),
             _passage("http://b.example/connections", "The default value is one hundred.", kind="definition",
                      section="Connections and Authentication › Connection Settings › max_connections (integer)")]
    scores = _scores("What is the default work_mem setting?", embed, fresh=fresh,
                     keyword_weight=0.0, section_name_bonus=0.0)  # meaning alone
    assert scores["The default value is four megabytes."] > scores["The default value is one hundred."] + 0.05


def test_stored_passages_are_searched_by_words_as_well_as_by_meaning(embed):
    # The nearest passages by meaning restate the question; the one naming the setting is
    # far down by vector but first by words, and must still be searched for the answer.
    question = "Which setting aborts a statement that runs too long?"
    near = [_passage(f"http://a.example/p{i}", f"Statements that run a long time are common in case {i}.",
                     score=0.9 - i / 100) for i in range(20)]
    answer = Passage(url="http://a.example/timeouts", text="Set statement_timeout to abort statements after a time.",
                     start=0, end=56, score=0.3, section="Client Defaults › statement_timeout aborts")
    scores = _scores(question, embed, stored=near + [answer], top_k=2, candidate_factor=2)
    assert answer.text in scores
    assert len({text for text in scores if text.startswith("Statements")}) < 20  # the net stays narrow


def test_of_two_pages_that_say_the_same_the_one_the_search_put_first_ranks_first(embed):
    # git-rev-parse(1) and gitrevisions(7) hold the same text; the search engine's order says
    # which page the reader should be sent to.
    text = "A suffix ~<n> to a revision parameter means the commit object that is the nth generation ancestor."
    pages = ["http://a.example/gitrevisions", "http://a.example/git-rev-parse"]
    fresh = [_passage(url, text, section="SPECIFYING REVISIONS") for url in pages]
    for ranking in (pages, pages[::-1]):
        query = embed(["What is HEAD~3 equivalent to?"], "query")[0]
        selection = select("What is HEAD~3 equivalent to?", Config.load(), [], fresh, query, embed, ranking=ranking)
        best = max(selection.candidates, key=lambda c: c.score)
        assert best.url == ranking[0]
        assert best.score - min(c.score for c in selection.candidates) == pytest.approx(0.1 / 2, abs=1e-3)
