"""Grounding with the real embedder: markers are checked, not trusted."""

from __future__ import annotations

import pytest

from localsearch.citations import ground_answer, missing_facts, unanswered, why_not_standing
from localsearch.question import analyse
from localsearch.types import Answer, Citation, Passage, Source

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
    assert by_n[2].reason  # the unsupported citation is kept, with why, but not as a marker in the text
    assert answer.text == "The lighthouse was first lit in 1887 [1]."


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
    assert citation.reason == "no sentence of the source read for the answer has Edwin, Marsh, 1887"


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
    ("What is the maximum length of a column name?", ""),  # a length, not a name
])
def test_what_a_question_asks_for(question, kind):
    assert analyse(question).asks == kind


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
    # On the short leash (given the extractive answer's evidence), a restatement does not stand.
    how = "How was the lighthouse kept burning?"
    restated = ground("The lighthouse lamp was kept burning for years [1].", embed)
    evidence = [c for c in restated.citations if c.supported]
    assert evidence and why_not_standing(how, restated) == ""
    assert why_not_standing(how, restated, evidence=evidence) == "the model's answer names nothing the question does not"
    assert why_not_standing(keeper, grounded, evidence=[c for c in grounded.citations if c.supported]) == ""


def test_code_names_and_paths_are_facts_a_source_must_hold():
    from localsearch.citations import _facts

    assert _facts("The function `date_to_timestamp` does it.") == ["date_to_timestamp"]
    assert _facts("Use --depth 1 or -j 4, see push.default, age() and /etc/hostname.")[1:] == \
        ["1", "4", "--depth", "-j", "push.default", "age", "/etc/hostname"]
    assert _facts("A well-known co-op.") == []
    assert missing_facts("It is stored in `systemd-system.conf`.", "The name is stored in /etc/hostname.") == \
        ["systemd-system.conf"]
    assert missing_facts("It is stored in /etc/hostname.", "The name is stored in \"`/etc/hostname`\".") == []


def test_the_sentence_with_the_kind_of_answer_asked_for_ranks_higher(make_pipeline):
    from localsearch.config import Config
    from localsearch.pipeline import fold_events
    from localsearch.plugins import pm
    from localsearch.selection import select

    question = "How long is an adult Velkaro glass beetle?"
    embed = pm.hook.embedder(config=Config.load()).embed
    text = ("The adult Velkaro glass beetle has wing cases as clear as window glass. "
            "Adults measure just 7.3 mm from head to wing tip.")
    passage = Passage(url="http://example.org/beetle", text=text, start=0, end=len(text))

    def scores(bonus):
        selection = select(question, Config.load(overrides={"answer_kind_bonus": bonus}), [], [passage],
                           embed([question], "query")[0], embed)
        return {c.text[:6]: c.score for c in selection.candidates}

    without, with_bonus = scores(0.0), scores(0.2)
    assert with_bonus["Adults"] == pytest.approx(without["Adults"] + 0.2, abs=1e-3)  # it gives a number
    assert with_bonus["The ad"] == without["The ad"]  # it gives none
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


def test_a_model_answer_that_adds_a_number_its_evidence_lacks_does_not_stand():
    # Near the row it rests on, which the similarity check accepts, but the 4 came from
    # another sentence on the page.
    question = "What file permissions does /etc/shadow have?"
    row = "file: `/etc/shadow` | permission: `-rw-r-----` | user: `root` | group: `shadow`"

    def model_says(sentence):
        citation = Citation(n=1, url="https://a.example/files", title="Files", quote=row, supported=True,
                            sentence=sentence, start=10, end=10 + len(row))
        return Answer(question=question, sources=SOURCES, text=f"{sentence} [1]", citations=[citation])

    evidence = model_says(row).citations
    assert why_not_standing(question, model_says("The permissions of /etc/shadow are 4."), evidence) == \
        "the model's answer says what its evidence does not ('4')"
    assert why_not_standing(question, model_says("/etc/shadow is -rw-r----- and owned by root."), evidence) == ""


# -- the grounding holes (issue 9) -----------------------------------------------------------
def _backed(answer) -> bool:
    """Whether every [n] in ``answer.text`` has a supported citation with that n behind it."""
    from localsearch.text import CITATION_RE, citation_numbers, without_code

    marked = {n for group in CITATION_RE.findall(without_code(answer.text)) for n in citation_numbers(group)}
    return marked <= {c.n for c in answer.citations if c.supported}


def test_a_name_that_opens_the_sentence_is_checked_as_a_name(embed):
    answer = ground("Delacre kept the lamp burning for forty years [1].", embed)
    (citation,) = answer.citations
    assert not citation.supported and citation.reason == "the source never mentions Delacre"
    assert answer.unsupported == ["Delacre kept the lamp burning for forty years."]
    assert missing_facts("Delacre kept the lamp burning.", LIGHTHOUSE) == ["Delacre"]
    # A name the page does have may open the sentence.
    assert ground("Marsh kept the lamp burning for forty years [1].", embed).citations[0].supported


@pytest.mark.parametrize("opening", ["However, the", "Yes, the", "According to the source, the", "In short, the",
                                     "Today the", "Cost aside, the"])
def test_a_common_word_that_opens_the_sentence_is_no_name(embed, opening):
    # "Cost" is no opener, but the page writes "cost" in lower case: an ordinary word.
    answer = ground(f"{opening} lighthouse was first lit in 1887 [1].", embed)
    (citation,) = answer.citations
    assert citation.supported, citation.reason
    assert citation.quote == "The lighthouse was first lit on 14 October 1887."
    assert answer.unsupported == []


def test_every_sentence_is_checked_however_short(embed):
    answer = ground("The lighthouse was first lit in 1887 [1]. Bananas rot. Delacre [1].", embed)
    assert answer.unsupported == ["Bananas rot.", "Delacre."]
    (flagged,) = [c for c in answer.citations if c.sentence == "Delacre."]
    assert not flagged.supported and flagged.reason == "the source never mentions Delacre"
    assert answer.text == "The lighthouse was first lit in 1887 [1]. Bananas rot. Delacre."
    # A short sentence a source does support is cited like any other.
    answer = ground("Edwin Marsh [1].", embed)
    assert [c.supported for c in answer.citations] == [True] and answer.text == "Edwin Marsh [1]."
    assert answer.unsupported == []


def test_a_list_number_is_the_label_of_its_item_not_a_sentence(embed):
    answer = ground("1. The lighthouse was first lit in 1887 [1].\n2. Bananas rot.\n3. Delacre [1].", embed)
    assert answer.text == "1. The lighthouse was first lit in 1887 [1]. 2. Bananas rot. 3. Delacre."
    assert answer.unsupported == ["Bananas rot.", "Delacre."]
    assert [(c.sentence, c.supported) for c in answer.citations] == [
        ("The lighthouse was first lit in 1887.", True), ("Delacre.", False)]


def test_a_cited_sentence_no_source_supports_is_unsupported_and_loses_its_marker(embed):
    answer = ground("The lighthouse keeper was Lucien Delacre [1]. It is 11 mm long [2].", embed)
    assert answer.unsupported == ["The lighthouse keeper was Lucien Delacre."]
    assert answer.text == "The lighthouse keeper was Lucien Delacre. It is 11 mm long [2]."
    flagged, kept = answer.citations
    assert (flagged.n, flagged.supported) == (1, False) and "Lucien" in flagged.reason  # kept, with why
    assert (kept.n, kept.supported) == (2, True)
    assert _backed(answer)


def test_neutralize_citations():
    from localsearch.text import CITATION_RE, neutralize_citations

    # Footnote references attached to the word or punctuation before them are dropped.
    assert neutralize_citations("It was first lit in 1887,[2] by the board.[3][4]") == \
        "It was first lit in 1887, by the board."
    assert neutralize_citations("the lamp[12] burned") == "the lamp burned"
    # Anything else that looks like a citation stays readable, but is no citation.
    assert neutralize_citations("xs = [1, 2, 3]") == "xs = (1, 2, 3)"
    assert neutralize_citations("[2] Harrowmere history\n[3] Keepers") == "(2) Harrowmere history\n(3) Keepers"
    assert neutralize_citations("See [source 2] and [Sources 1-3].") == "See (source 2) and (Sources 1-3)."
    assert neutralize_citations("a footnote run[1]\n[2] Next line") == "a footnote run\n(2) Next line"
    assert neutralize_citations("plain [note] text") == "plain [note] text"
    for text in ("[1[2]]", "[[1]]", "x [1 and 2] y", "([1])", "w[1] [2, 3] [source 4]"):
        assert CITATION_RE.search(neutralize_citations(text)) is None, text


FOOTNOTED = ("The lighthouse was first lit on 14 October 1887,[2] after nine years of work. "
             "Its lamp turned through the settings [1, 2, 3] every night of the year.\n"
             "[3] Harrowmere history, a footnote line of the page itself.")


def _footnoted_candidates():
    from localsearch.text import split_sentences

    return [Passage(url=SOURCES[0].url, text=FOOTNOTED[s:e], start=s, end=e, score=1.0 - i / 10)
            for i, (s, e) in enumerate(split_sentences(FOOTNOTED))]


def test_the_extractive_answer_carries_no_marker_from_page_text():
    from localsearch.extractive import extractive_answer
    from localsearch.text import CITATION_RE, citation_numbers, without_code

    candidates = _footnoted_candidates()
    asked = {"When was the lighthouse first lit?":
             "The lighthouse was first lit on 14 October 1887, after nine years of work [1].",
             "Which settings did its lamp turn through?":
             "Its lamp turned through the settings `[1, 2, 3]` every night of the year [1].",
             "What is the Harrowmere history?": "`[3]` Harrowmere history, a footnote line of the page itself [1]."}
    for (question, expected), candidate in zip(asked.items(), candidates):
        answer = extractive_answer(question, SOURCES, [candidate])
        assert answer.text == expected
        # The page's own brackets are kept as they are, as code, which is never read as a marker.
        assert {n for g in CITATION_RE.findall(without_code(answer.text)) for n in citation_numbers(g)} == {1}
        assert _backed(answer)
        # The quote is still the page's exact text.
        assert [FOOTNOTED[c.start:c.end] for c in answer.citations] == [c.quote for c in answer.citations]
    assert "1887,[2]" in candidates[0].text


def test_page_text_cannot_pose_as_a_numbered_source_in_the_prompt():
    from localsearch.prompt import default_messages
    from localsearch.text import CITATION_RE

    sources = [Source(1, SOURCES[0].url, "[2] Lighthouse [source 3]", "ok"), SOURCES[1]]
    passages = _footnoted_candidates() + [Passage(url=SOURCES[1].url, text=BEETLE, start=0, end=len(BEETLE))]
    prompt = default_messages("When was it first lit?", sources, passages)[-1]["content"]
    # The only markers are the prompt's own source headings, each once, at the start of a line.
    assert [m.group().strip() for m in CITATION_RE.finditer(prompt)] == ["[1]", "[2]"]
    assert "\n[1] (2) Lighthouse (source 3)\n" in prompt and "\n[2] Beetle\n" in prompt
    assert "14 October 1887, after" in prompt and "(1, 2, 3)" in prompt


def test_sanitize_keeps_only_markers_a_supported_citation_backs():
    from localsearch.citations import sanitize_answer_text
    from localsearch.types import Citation

    numbers = {1: SOURCES[0].url, 2: SOURCES[1].url, 3: "https://c.example/"}
    citations = [Citation(1, SOURCES[0].url, "Lighthouse", "q", True),
                 Citation(2, SOURCES[1].url, "Beetle", "q", False, reason="the source never mentions X"),
                 Citation(3, "https://elsewhere.example/", "Other", "q", True)]  # not source 3's URL
    text = "It was lit in 1887 [1]. It is 11 mm long [2]. See [1, 3] and [7]."
    backed = sanitize_answer_text(text, numbers, citations=citations)
    assert backed == "It was lit in 1887 [1]. It is 11 mm long. See [1] and."
    assert sanitize_answer_text(text, numbers, citations=[]) == "It was lit in 1887. It is 11 mm long. See and."
    # Without citations it keeps every marker of a known source, as before.
    assert sanitize_answer_text(text, numbers) == "It was lit in 1887 [1]. It is 11 mm long [2]. See [1][3] and."


@pytest.mark.parametrize("reply", [
    "The lighthouse was first lit in 1887 [1][2]. Delacre kept it [1]. Yes [2].",
    "[3] The glass beetle is 11 mm long [1]. Bananas rot [2].",
    "It is 11 mm long [2]. Edwin Marsh kept the lamp burning for forty years [source 1, 2].",
])
def test_every_marker_of_a_grounded_answer_is_backed(embed, reply):
    answer = ground(reply, embed)
    assert _backed(answer)
    supported = {c.sentence for c in answer.citations if c.supported}
    unsupported = answer.unsupported
    assert not supported & set(unsupported)
    assert len(supported) + len(unsupported) == len(reply.split(". "))  # every sentence is one or the other


def test_on_the_short_leash_a_model_answer_that_says_a_sentence_twice_does_not_stand(embed):
    question = "Who kept the lamp burning at the lighthouse?"
    once = ground("Its keeper, Edwin Marsh, kept the lamp burning for forty years [1].", embed)
    twice = ground("The answer is: Edwin Marsh kept the lamp burning [1]. "
                   "The answer is: Edwin Marsh kept the lamp burning [1].", embed)
    assert all(c.supported for c in twice.citations)
    evidence = [c for c in once.citations if c.supported]
    assert why_not_standing(question, once, evidence=evidence) == ""
    assert why_not_standing(question, twice, evidence=evidence) == "the model repeated itself"
    assert why_not_standing(question, twice) == ""  # the long leash: a procedure may repeat a step
    # Two lists both begin with "1.": a label said twice is not a sentence said twice.
    labels = ground("1. Its keeper, Edwin Marsh, kept the lamp burning for forty years [1]. "
                    "1. Edwin Marsh kept the lamp burning [1].", embed)
    assert why_not_standing(question, labels, evidence=evidence) != "the model repeated itself"


def test_on_the_short_leash_a_model_answer_with_an_unbacked_claim_does_not_stand(embed):
    question = "Who kept the lamp burning at the lighthouse?"
    answer = ground("Its keeper, Edwin Marsh, kept the lamp burning for forty years [1]. "
                    "Bananas are an excellent source of potassium for athletes.", embed)
    evidence = [c for c in answer.citations if c.supported]
    assert evidence and answer.unsupported == ["Bananas are an excellent source of potassium for athletes."]
    assert why_not_standing(question, answer) == ""  # the long leash shows it, marked unsupported
    assert why_not_standing(question, answer, evidence=evidence) == \
        "the model's answer says what no source supports ('Bananas are an excellent source of potassium for athletes.')"
    # Small talk names nothing: it costs the answer nothing.
    polite = ground("Sure! Its keeper, Edwin Marsh, kept the lamp burning for forty years [1]. I hope this helps.",
                    embed)
    assert polite.unsupported and why_not_standing(question, polite, evidence=evidence) == ""
