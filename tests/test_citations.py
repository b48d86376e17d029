"""Grounding with the real embedder: markers are checked, not trusted."""

from __future__ import annotations

import pytest

from localsearch.citations import asked_for, ground_answer, missing_facts, unanswered, why_not_standing
from localsearch.types import Passage, Source

LIGHTHOUSE = ("The lighthouse was first lit on 14 October 1887. Its keeper, Edwin Marsh, kept the lamp "
              "burning for forty years. The restoration cost £4.2 million.")
BEETLE = "The glass beetle lives in the cloud forests of the Cordillera de Velkaro. It is 11 mm long."
SOURCES = [Source(1, "https://a.example/lighthouse", "Lighthouse", "ok"),
           Source(2, "https://b.example/beetle", "Beetle", "ok")]


@pytest.fixture(scope="module")
def embed():
    from localsearch.config import Config
    from localsearch.plugins import pm

    embedder = pm.hook.embedder(config=Config.load())
    return lambda texts: embedder.embed(texts, "passage")


def ground(text, embed):
    from localsearch.text import split_sentences

    candidates = []
    for source, body in ((SOURCES[0], LIGHTHOUSE), (SOURCES[1], BEETLE)):
        for start, end in split_sentences(body):
            candidates.append(Passage(url=source.url, text=body[start:end], start=start, end=end))
    vectors = embed([c.text for c in candidates])
    return ground_answer("q", text, SOURCES, candidates, vectors, embed, 0.5,
                         {SOURCES[0].url: LIGHTHOUSE, SOURCES[1].url: BEETLE})


def test_missing_names_and_numbers_are_found():
    assert missing_facts("It was lit in 1887 by Edwin Marsh.", LIGHTHOUSE) == []
    assert missing_facts("It was lit in 1889 by Edwin Marsh.", LIGHTHOUSE) == ["1889"]
    assert missing_facts("It cost £4.2 million, said Lucien Delacre.", LIGHTHOUSE) == ["Lucien", "Delacre"]


def test_supported_citation_is_kept_with_its_quote(embed):
    answer = ground("The lighthouse was first lit in 1887 [1].", embed)
    (citation,) = answer.citations
    assert citation.supported and citation.n == 1 and citation.url == SOURCES[0].url
    assert citation.quote == "The lighthouse was first lit on 14 October 1887."
    assert LIGHTHOUSE[citation.start:citation.end] == citation.quote
    assert answer.text == "The lighthouse was first lit in 1887 [1]."


def test_marker_naming_no_source_is_removed_and_the_right_source_found(embed):
    answer = ground("The glass beetle lives in the cloud forests of Velkaro. [7]", embed)
    assert "[7]" not in answer.text
    assert [c.n for c in answer.citations] == [2] and answer.citations[0].supported
    assert answer.text.endswith("[2].")


def test_wrong_source_or_invented_fact_is_flagged(embed):
    answer = ground("The lighthouse keeper was Lucien Delacre [1].", embed)
    flagged = answer.citations[0]
    assert not flagged.supported and "Lucien" in flagged.reason
    answer = ground("The lighthouse was first lit in 1887 [2].", embed)
    by_n = {c.n: c for c in answer.citations}
    assert not by_n[2].supported  # the beetle page says nothing of the kind
    assert by_n[1].supported  # ... and the page that does is cited instead
    assert "[2][1]" in answer.text


def test_the_sentence_cited_is_the_one_that_holds_the_answers_names_and_numbers(embed):
    # Closest in meaning to the keeper's sentence, but the year is in the other one: a reader
    # sent to the keeper's sentence would not find it.
    answer = ground("The keeper kept the lamp burning until 1887 [1].", embed)
    (citation,) = answer.citations
    assert citation.quote == "The lighthouse was first lit on 14 October 1887."
    # Each fact is on the page, but no one sentence says them together.
    answer = ground("Edwin Marsh first lit the lighthouse in 1887 [1].", embed)
    (citation,) = answer.citations
    assert not citation.supported
    assert citation.reason == "no sentence of the source read for the answer has Marsh, 1887"


def test_sentence_nothing_supports_is_listed_as_unsupported(embed):
    answer = ground("Bananas are an excellent source of potassium for athletes.", embed)
    assert answer.citations == []
    assert answer.unsupported == ["Bananas are an excellent source of potassium for athletes."]


@pytest.mark.parametrize("question, kind", [
    ("In what year was the lighthouse first lit?", "a number or date"),
    ("When was the lighthouse first lit?", "a number or date"),
    ("For how many minutes is the tart baked?", "a number or date"),
    ("How long is an adult beetle?", "a number or date"),
    ("Who was the last keeper?", "a name"),
    ("What was the codename of the 3.0 release?", "a name"),
    ("What is the name of the first ferry?", "a name"),
    ("Why did the dam fail?", ""),
    ("What is the secret ingredient?", ""),
])
def test_what_a_question_asks_for(question, kind):
    assert asked_for(question) == kind


def test_an_answer_gives_what_the_question_asks_for_only_if_the_question_lacks_it():
    question = "What was the codename of the Quillstone 3.0 release?"
    assert unanswered(question, "The codename of the Quillstone 3.0 release is Quillstone 3.0.") == "a name"
    assert unanswered(question, "It was called Bramblewood.") == ""
    question = "How many inserts per second did Quillstone 3.0 sustain on a Raspberry Pi 5?"
    assert unanswered(question, "The answer is: 3.0") == "a number or date"
    assert unanswered(question, "It sustained 182,000 inserts per second.") == ""
    assert unanswered("How many minutes is it baked?", "1. The source is a recipe.") == "a number or date"
    assert unanswered("How many minutes is it baked?", "It is baked for forty-two minutes.") == ""
    assert unanswered("Who found it?", "the first one was found in the forest.") == "a name"
    who = "Who is the chief executive of the Norvane Ferry Company?"
    assert unanswered(who, "The chief executive of the Norvane Ferry Company is Norvane Ferries.") == "a name"
    assert unanswered(who, "Its chief executive is Ingrid Thorsdóttir.") == ""
    assert unanswered("Why did it fail?", "Because of the rain.") == ""


def test_a_model_answer_stands_only_if_a_supported_sentence_answers(embed):
    keeper = "Who kept the lamp burning at the lighthouse?"
    grounded = ground("Its keeper, Edwin Marsh, kept the lamp burning for forty years [1].", embed)
    assert why_not_standing(keeper, grounded) == ""
    restated = ground("The keeper of the lighthouse kept the lamp burning for forty years [1].", embed)
    assert restated.citations[0].supported  # backed by the source, yet it names nobody
    assert why_not_standing(keeper, restated) == "the sentences a source supports do not give a name the question asks for"
    invented = ground("Bananas are an excellent source of potassium for athletes.", embed)
    assert why_not_standing(keeper, invented) == "no source supports the model's answer"


def test_the_sentence_with_the_kind_of_answer_asked_for_ranks_higher(make_pipeline):
    from localsearch.pipeline import fold_events

    question = "How long is an adult Velkaro glass beetle?"
    without = fold_events(make_pipeline(answer_kind_bonus=0.0).ask(question))
    assert "7.3" not in without["answer"]  # sentences about the beetle, none with its length
    assert "7.3 mm" in fold_events(make_pipeline().ask(question))["answer"]


def test_a_model_answer_that_strays_from_the_best_evidence_does_not_stand(embed):
    question = "When was the lighthouse first lit?"
    answer = ground("The lighthouse was first lit in 1887 [1].", embed)
    (citation,) = answer.citations
    assert citation.supported and citation.quote == "The lighthouse was first lit on 14 October 1887."
    keeper = ground("Its keeper, Edwin Marsh, kept the lamp burning for forty years [1].", embed).citations
    assert why_not_standing(question, answer, evidence=[citation]) == ""
    assert why_not_standing(question, answer) == ""  # no evidence given: any supporting sentence will do
    assert why_not_standing(question, answer, evidence=keeper).startswith(
        "the model's answer rests on other sentences than the best-ranked ones")
