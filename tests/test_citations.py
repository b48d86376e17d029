"""Grounding with the real embedder: markers are checked, not trusted."""

from __future__ import annotations

import pytest

from localsearch.citations import ground_answer, missing_facts
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


def test_sentence_nothing_supports_is_listed_as_unsupported(embed):
    answer = ground("Bananas are an excellent source of potassium for athletes.", embed)
    assert answer.citations == []
    assert answer.unsupported == ["Bananas are an excellent source of potassium for athletes."]
