"""``localsearch eval``: the question file is checked, the figures are computed from answers."""

from __future__ import annotations

import json

import pytest

from localsearch.errors import LocalsearchError
from localsearch_plugins.evaluate import evaluate, load_questions

QA = "tests/testweb/qa.jsonl"


def test_the_shipped_question_set_loads_with_gold_urls():
    questions = load_questions(QA, "http://127.0.0.1:1234")
    assert len(questions) >= 40
    assert all(q["gold"] and q["gold"][0].startswith("http://127.0.0.1:1234/articles/") for q in questions)


@pytest.mark.parametrize("line, message", [
    ("not json", "line 1"),
    ('{"question": "q"}', "answer_pattern"),
    ('{"question": "q", "answer_pattern": "(unclosed"}', "line 1"),
])
def test_a_bad_question_line_is_a_clear_error(tmp_path, line, message):
    path = tmp_path / "qa.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(LocalsearchError, match=message):
        load_questions(str(path))


def test_evaluation_of_the_extractive_answers(make_pipeline, web):
    questions = [q for q in load_questions(QA, web.url) if "Harrowmere" in q["question"]][:3]
    pipeline = make_pipeline(llm=False)
    report = evaluate(lambda question: pipeline.ask(question), questions)
    summary = report["summary"]
    assert summary["questions"] == 3 and summary["errors"] == 0
    assert summary["gold_source_cited"] == 1.0  # the lighthouse page is cited for lighthouse questions
    assert 0 < summary["citation_precision"] <= 1 and summary["supported_share"] == 1.0
    for row in report["questions"]:
        assert row["correct"] == bool(next(q for q in questions if q["question"] == row["question"])["pattern"]
                                      .search(row["answer"]))
    json.dumps(report)  # the --json output is plain JSON
    # Timing from the pages to the first answer, each stage, and the sizes of the pages read.
    assert 0 < summary["median_after_pages_seconds"] < summary["median_seconds"]
    assert summary["median_token_after_pages_seconds"] is None  # no model, no token
    assert {"search", "fetch", "extract", "retrieve"} <= set(summary["median_stage_seconds"])
    assert summary["page_chars_max"] >= summary["page_chars_median"] > 1000
    assert summary["unbacked_markers"] == 0 and summary["fabricated_urls"] == 0


def test_markers_without_a_citation_and_urls_from_nowhere_are_counted():
    from localsearch_plugins.evaluate import score

    item = {"question": "q", "pattern": __import__("re").compile("x"), "gold": ["https://a.example/"]}
    result = {"answer": "It was 1887 [1]. See https://evil.example/x and [2]. Code `xs[3]` is fine.",
              "citations": [{"n": 1, "url": "https://a.example/", "supported": True, "quote": "lit in 1887"}],
              "sources": [{"n": 1, "url": "https://a.example/"}, {"n": 2, "url": "https://b.example/"}]}
    row = score(item, result, 1.0)
    assert row["unbacked_markers"] == 1  # [2] has no supported citation; `xs[3]` is code
    assert row["fabricated_urls"] == 1


def test_the_models_first_token_is_timed_from_the_pages_arriving():
    from localsearch.types import Event
    from localsearch_plugins.evaluate import _stamps

    stamped = [(1.0, Event("stage_end", {"stage": "fetch"})), (1.4, Event("extractive_answer", {})),
               (2.9, Event("answer_delta", {"text": "The"})), (3.0, Event("answer_delta", {"text": " default"}))]
    assert _stamps(stamped)["after_pages"] == 0.4
    assert _stamps(stamped)["token_after_pages"] == 1.9
