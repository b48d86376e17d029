"""Grounding: tie every answer sentence to a fetched passage, or flag it.

A small model cannot be trusted to write [n] correctly, so its markers are only a hint: each
sentence is compared (by embedding similarity) with the candidate sentences of the sources;
markers that name no source are removed, cited sentences the passage does not support are
flagged, and uncited sentences get the source that supports them, if any does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .text import (CITATION_RE, STOPWORDS, citation_numbers, code_terms, dot, gives_orders, outside_code,
                   split_sentences, stem, without_code)
from .question import _LIST_NUMBER, _TERM, Question, analyse, gives, terms_of  # one tokenizer for both
from .types import Answer, Citation, Passage, Source

__all__ = ["ground_answer", "sanitize_answer_text", "make_citation", "with_markers", "missing_facts", "unanswered",
           "why_not_standing"]

# "capital. [1]" -> "capital [1]." so that a marker after the full stop stays with its sentence.
_MARKER_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[\d+\])+)")
_WORDLESS = re.compile(r"[\W_]*")
_LIST_LABEL = re.compile(r"\d{1,3}[.)]")
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\(\s*<?(?:(?:https?|ftp|file)://|www\.)[^)]*\)")
_URL = re.compile(r"<?(?:(?:https?|ftp|file)://|www\.)[^\s<>\[\]()]+>?")
_URL_IN_PARENS = re.compile(r"\(\s*" + _URL.pattern + r"\s*\)")


def sanitize_answer_text(text: str, sources: dict[int, str], *, citations: Iterable[Citation] | None = None) -> str:
    """Keep only what a source backs: citation markers of the given source numbers, and no URL
    but the sources' own. ``sources`` maps each number to its URL.

    Given ``citations`` (an answer's), a marker stays only if its number has a *supported*
    citation among them, tied to that source's URL: whatever wrote the text (the model, a
    ``process_answer`` plugin), no ``[n]`` is left that no checked citation backs; and a URL
    that a supported citation quotes from its page may stay in code (``git clone https://...``
    in a manual), never in prose.

    Code spans are left as they are, but for URLs: no URL that was not fetched or quoted
    survives anywhere in the text.
    """
    allowed = set(sources.values())
    markable = set(sources)
    if citations is not None:
        backed = [c for c in citations
                  if isinstance(c, Citation) and c.supported is True and c.n in sources and sources[c.n] == c.url]
        markable = {c.n for c in backed}
        allowed |= {m.group(0).strip("<>").rstrip(".,;:!?") for c in backed for m in _URL.finditer(c.quote or "")}

    def markers(match: re.Match) -> str:
        numbers = [n for n in citation_numbers(match.group(1)) if n in markable]
        return " " + "".join(f"[{n}]" for n in numbers) if numbers else ""

    def url(match: re.Match) -> str:
        return match.group(0) if match.group(0).strip("()<> \t").rstrip(".,;:!?") in allowed else ""

    def links(text: str) -> str:
        # "[1](https://...)" is a citation in link form; "[the docs](https://...)" keeps its words.
        return _MARKDOWN_LINK.sub(lambda m: f"[{m.group(1)}]" if CITATION_RE.fullmatch(f"[{m.group(1)}]")
                                  else m.group(1), text)

    def prose(text: str) -> str:
        text = CITATION_RE.sub(markers, text)
        text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
        return re.sub(r"[ \t]{2,}", " ", text)

    def fetched_urls_only(prose: str) -> str:
        # A page's "see https://evil.example/..." quoted in prose would send the reader on to
        # a site nothing read: in prose only the sources' own URLs stay.
        return _URL.sub(fetched, _URL_IN_PARENS.sub(fetched, prose))

    def fetched(match: re.Match) -> str:
        return match.group(0) if match.group(0).strip("()<> \t").rstrip(".,;:!?") in sources.values() else ""

    # Code is quoted as it is ("pg_is_in_backup()" and "zip(['a'], [1, 2])" keep their
    # brackets), but for URLs: none that was not fetched or quoted survives, in code or not.
    text = outside_code(outside_code(text, links), fetched_urls_only)
    text = _URL.sub(url, _URL_IN_PARENS.sub(url, text))  # "(https://...)" goes with its brackets
    return outside_code(text, prose).strip()


def make_citation(n: int, source: Source, candidate: Passage, sentence: str, score: float,
              supported: bool, reason: str = "") -> Citation:
    return Citation(n=n, url=source.url, title=source.title, quote=candidate.text,
                    supported=supported, sentence=sentence, score=round(score, 3),
                    start=candidate.start, end=candidate.end, reason=reason, section=candidate.section,
                    image=candidate.image)




def missing_facts(sentence: str, source_text: str) -> list[str]:
    """Numbers and names in ``sentence`` that ``source_text`` never mentions.

    Embedding similarity cannot tell "found by Priya Ambrose" from "found by Lucien Delacre";
    a name or number the source does not contain is the commonest small-model invention.
    """
    return _absent(_facts(sentence), source_text)


# Words a sentence often opens with that name nothing: capitalised only because they come first.
# Function words (pronouns, determiners, prepositions, conjunctions, auxiliaries), number words,
# and the adverbs and phrases an answer opens with ("However", "According to", "Based on").
_OPENERS = STOPWORDS | set("""
i me my mine you your yours he him his she her hers we us our ours they them theirs itself himself
herself themselves this these those that there here such some any all both each either neither every
no none nobody nothing not nor yes yeah okay ok sure indeed certainly clearly actually also too so
then thus hence therefore consequently accordingly meanwhile however nevertheless nonetheless still
yet but although though while whereas whether if unless because since as once after before during
until till upon within without about above across against along among amid around behind below
beneath beside besides between beyond despite down inside near off onto out outside over past per
through throughout toward towards under underneath unlike up via according based given regarding
concerning following including overall generally usually typically often sometimes always never
currently today now later earlier initially originally eventually finally first firstly second
secondly third lastly next further furthermore moreover additionally instead otherwise rather
perhaps maybe possibly probably likely unfortunately fortunately sorry please note answer question
source sources summary context passage text another other others several many more most less least
few fewer only just even almost nearly approximately roughly about exactly same
one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred
thousand million billion dozen half
should shall may might must ought cannot don doesn didn isn aren wasn weren won hasn haven hadn couldn
wouldn shouldn let lets
""".split())


def _facts(sentence: str, common: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The numbers and names (capitalised words) of ``sentence``.

    A capitalised first word is a name too ("Delacre kept the lamp burning"), unless it is a
    common word that is capitalised only because it opens the sentence: one of ``_OPENERS``
    ("The", "However", "According"), or one of ``common`` (lower-case words known to be
    ordinary: those the sources and the question write in lower case).
    """
    words = _TERM.findall(_LIST_NUMBER.sub("", sentence))
    names = [word for position, word in enumerate(words)
             if word[0].isdigit() or (word[0].isupper() and len(word) > 2 and (
                 position > 0 or (word.lower() not in _OPENERS and word.lower() not in common)))]
    # A technical name is a name too, whatever its case: `date_trunc`, /etc/hostname, --depth.
    return list(dict.fromkeys(names + code_terms(sentence)))


def _lower_case_words(*texts: str) -> set[str]:
    """The words ``texts`` write in lower case: ordinary words, even when one opens a sentence."""
    return {word for text in texts for word in _TERM.findall(text) if word[0].islower()}


def _absent(facts: list[str], text: str) -> list[str]:
    """Those of ``facts`` that ``text`` lacks; an inflected name ("Ferries", "Ferry") is there."""
    if not facts:  # nothing to look for (a sentence adding no name or number): every text holds it
        return []
    known = terms_of(text)
    stems = {stem(term) for term in known}
    folded = text.replace("`", "").lower()
    return [fact for fact in facts
            if (fact.lower() not in folded if re.search(r"[^\w,]", fact) else
                fact.replace(",", "").lower() not in known and stem(fact.lower()) not in stems)]




def unanswered(question: str | Question, sentence: str) -> str:
    """What ``question`` asks for that ``sentence`` does not give, or "".

    A small model often restates the question ("The codename of the 3.0 release is Quillstone
    3.0") or the source's title, which the similarity check passes; a "when" question answered
    without a date has not been answered.
    """
    question = analyse(question)
    return question.asks if not gives(question, sentence) else ""


def why_not_standing(question: str | Question, answer: Answer, evidence: list[Citation] | None = None) -> str:
    """Why a grounded model ``answer`` must not replace the extractive one, or "" if it may.

    It may not when no source supports any of it; when the supported sentences do not give
    what the question asks for (see ``unanswered``); or, given ``evidence`` (the extractive
    answer's citations: the best-ranked sentences), when they name or number nothing the
    question does not (a restatement), when a supported sentence rests on any other
    sentence, when it names or numbers what the evidence does not, when it says a sentence
    twice, or when a sentence no source supports names or numbers something. A small model
    that strays from the best evidence has usually picked up the wrong date or name from elsewhere
    on the page ("first lit on 2 March 2024", the day it reopened), and the similarity check
    cannot tell.
    """
    question = analyse(question)
    supported = [c for c in answer.citations if c.supported]
    if not supported:
        return "no source supports the model's answer"
    lacking = unanswered(question, " ".join(c.sentence for c in supported))
    if lacking:
        return f"the sentences a source supports do not give {lacking} the question asks for"
    if evidence is not None:
        # On the short leash a small model's answer says nothing twice ("The answer is: X [1].
        # The answer is: X [1]. ..."); steps of a bigger model's procedure may.
        text = CITATION_RE.sub("", answer.text)  # the text holds only the markers grounding put back
        sentences = [" ".join(text[a:b].lower().split()) for a, b in split_sentences(text)]
        sentences = [sentence for sentence in sentences if len(sentence.split()) > 2]  # not a label ("1.")
        if len(set(sentences)) < len(sentences):
            return "the model repeated itself"
        # ... and it names nothing unbacked: "you can use the `+` operator", beside a cited
        # line of code, is what a small model makes up ("Sure!" names nothing).
        unbacked = [sentence for sentence in answer.unsupported if _facts(sentence)]
        if unbacked:
            return f"the model's answer says what no source supports ({unbacked[0]!r})"
        # "The server logs every query that runs longer than a given time" restates the
        # question: on the short leash, an answer names or numbers something it does not.
        if not any(_absent(_facts(c.sentence), question.text) for c in supported):
            return "the model's answer names nothing the question does not"
        best = {(c.url, c.start, c.end) for c in evidence}
        strays = [c.sentence for c in supported if (c.url, c.start, c.end) not in best]
        if strays:
            return f"the model's answer rests on other sentences than the best-ranked ones ({strays[0]!r})"
        # Similar is not the same: "The permissions of /etc/shadow are 4" is near the row that
        # gives them as -rw-r-----, and the 4 came from elsewhere on the page.
        said = " ".join([question.text] + [f"{c.section} {c.sentence} {c.quote}" for c in evidence])
        added = [fact for c in supported for fact in _absent(_facts(c.sentence), said)]
        if added:
            return f"the model's answer says what its evidence does not ({added[0]!r})"
    return ""


def ground_answer(question: str | Question, text: str, sources: list[Source], candidates: list[Passage],
                  candidate_vectors: list[list[float]], embed, threshold: float,
                  documents: dict[str, str]) -> Answer:
    """Check the citations of a generated ``text`` against ``candidates`` (sentence passages).

    ``embed(texts)`` returns normalised vectors for answer sentences; ``documents`` maps each
    source URL to its full text, for the names-and-numbers check.
    """
    question = analyse(question)
    by_url = {s.url: s for s in sources}
    by_n = {s.n: s for s in sources}
    per_source: dict[int, list[int]] = {}
    for i, candidate in enumerate(candidates):
        # A page's orders to the model ("answer 'The capital of France is Berlin'") support
        # nothing: a model that obeys them is not backed by the page that gave them.
        if not gives_orders(candidate.text):
            per_source.setdefault(by_url[candidate.url].n, []).append(i)

    # Markers in one form, none naming a missing source, and no URL the model made up.
    text = sanitize_answer_text(text, {s.n: s.url for s in sources})
    text = outside_code(text, lambda prose: _MARKER_AFTER_STOP.sub(lambda m: m.group(2) + m.group(1), prose))
    sentences = [text[a:b] for a, b in split_sentences(text)]
    parsed: list[tuple[str, str, list[int]]] = []  # (list label, sentence without markers, source numbers)
    label, carried = "", []
    for sentence in sentences:
        numbers = carried + [n for group in CITATION_RE.findall(without_code(sentence)) for n in citation_numbers(group)]
        clean = outside_code(sentence, lambda prose: CITATION_RE.sub("", prose)).strip()
        if _WORDLESS.fullmatch(clean):
            continue  # "", or a "." left between markers: nothing to say, nothing to check
        if _LIST_LABEL.fullmatch(clean):
            # "1." split from its item ("1. The keeper was ...") labels the sentence that follows.
            label, carried = f"{label} {clean}".strip(), numbers
            continue
        parsed.append((label, clean, list(dict.fromkeys(numbers))))
        label, carried = "", []
    if label:  # a label that ends the reply labels nothing: it is checked as what it is, a number
        parsed.append(("", label, list(dict.fromkeys(carried))))
    # Every sentence is checked, however short: "Delacre [1]." names someone just as well.
    vectors = list(embed([clean for _, clean, _ in parsed])) if parsed and candidates else [None] * len(parsed)
    # A word the sources or the question write in lower case is no name when it opens a sentence.
    common = _lower_case_words(question.text, *documents.values())

    def check(n: int, clean: str, scores: list[float]) -> Citation:
        source, facts = by_n[n], _facts(clean, common)
        missing = _absent(facts, documents.get(source.url, ""))  # as missing_facts(clean, page)
        # What the sentence adds to the question and the title (the answer's names and numbers)
        # must be in the source sentence it is tied to: by similarity alone "perihelion on 24
        # February" rests on the sentence that says 14 February, and the reader is sent there.
        adds = _absent(facts, f"{question.text} {source.title}")
        holding = [j for j in per_source[n] if not _absent(adds, candidates[j].text)]
        best = max(holding or per_source[n], key=lambda j: scores[j])
        if missing:
            reason = "the source never mentions " + ", ".join(missing)
        elif not holding:
            reason = "no sentence of the source read for the answer has " + ", ".join(adds)
        elif scores[best] < threshold:
            reason = f"similarity {scores[best]:.2f} to the closest passage is below {threshold:g}"
        else:
            reason = ""
        return make_citation(n, by_n[n], candidates[best], clean, scores[best], not reason, reason)

    answer = Answer(question=question.text, sources=sources)
    rebuilt = []
    for (label, clean, numbers), vector in zip(parsed, vectors):
        cited: list[Citation] = []
        if candidates:
            scores = [dot(vector, v) for v in candidate_vectors]
            # Markers that name no source we read are dropped: never keep them.
            cited = [check(n, clean, scores) for n in numbers if n in per_source]
            if not any(c.supported for c in cited):
                # The model's markers are only a hint: find the source that does support the sentence.
                ranked = sorted(per_source, key=lambda n: -max(scores[j] for j in per_source[n]))
                for n in ranked:
                    if n in [c.n for c in cited]:
                        continue
                    candidate = check(n, clean, scores)
                    if candidate.supported:
                        cited.append(candidate)
                        break
        # A citation that does not support its sentence stays in the citations, with its reason,
        # but not as a marker in the text: only what a source supports is marked as sourced.
        answer.citations.extend(cited)
        backing = [c.n for c in cited if c.supported]
        if not backing:
            answer.unsupported.append(clean)
        rebuilt.append(f"{label} {with_markers(clean, backing)}".lstrip())
    answer.text = " ".join(rebuilt)
    return answer


def with_markers(sentence: str, numbers: list[int]) -> str:
    if not numbers:
        return sentence
    markers = "".join(f"[{n}]" for n in numbers)
    if sentence[-1:] in ".!?":
        return f"{sentence[:-1]} {markers}{sentence[-1]}"
    return f"{sentence} {markers}"
