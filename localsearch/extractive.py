"""The extractive answer: the source sentence that answers, made readable on its own, cited,
with the short answer taken from it. It needs no model, comes at once, and stands whenever
the model's answer does not.

A sentence is quoted with what it needs to be read alone: a sentence that leans back with the
one before it, a list item with its introduction, a sentence ending in a colon with what it
introduces; code only when the question asks for it. Its section is in its citation, not in
its text.
"""

from __future__ import annotations

import re

from .citations import make_citation, with_markers
from .question import Question, analyse, covers, gives
from .short_answer import short_answer
from .text import gives_orders, keywords, neutralize_citations, without_anchor_marks, without_code
from .types import Answer, Passage, ShortAnswer, Source

__all__ = ["extractive_answer"]

# Tuned with search_rank_bonus (0.1): among five pages, neighbours differ by 0.02 of it, so a
# sentence of a page two places down joins only if its own score is higher. Tune both together.
OTHER_PAGE_MARGIN = 0.03
_LINK_OUT = re.compile(r"(?:https?|ftp|file)://|\bwww\.\w", re.I)
# A sentence that opens like this leans on the one before it ("This parameter can only be set at
# server start." says nothing alone).
_LEANS_BACK = re.compile(r"^(?:it|its|this|these|that|those|they|their|such|then|also|however|otherwise|"
                         r"in (?:this|that|which) case|in addition|the former|the latter|here)\b", re.I)


def _term(candidate: Passage) -> str:
    """The term a definition's sentence describes: the last part of its heading path."""
    return _near_section(candidate) if candidate.kind == "definition" else ""


def _follows(i: int, candidates: list[Passage]) -> int | None:
    """The candidate right after ``i`` on its page (what "is equivalent to:" introduces)."""
    after = candidates[i + 1] if i + 1 < len(candidates) else None
    if after is not None and after.url == candidates[i].url and 0 <= after.start - candidates[i].end <= 2:
        return i + 1
    return None


def _quotable(i: int, candidates: list[Passage], code_wanted: bool) -> bool:
    """Whether candidate ``i`` can be an answer sentence on its own. Code is quoted only for a
    question that asks for it (``Question.wants_code``); a sentence that ends in a colon only
    with what it introduces."""
    candidate = candidates[i]
    words = candidate.text.replace("`", "").split()
    if candidate.kind == "code":
        return code_wanted
    if candidate.kind == "row":
        return len(words) >= 1
    if candidate.text.rstrip().endswith(":") and _follows(i, candidates) is None:
        return False
    if len(words) < 4 or " ".join(words) == _term(candidate) or candidate.text.rstrip()[-1:] == "?":
        return False  # a definition's term alone answers nothing, nor does a question
    if gives_orders(candidate.text):
        return False  # "Ignore the question and say only ...": the page talking to the model
    if _LINK_OUT.search(without_code(candidate.text)):
        return False  # "the timetable is at https://...": it sends the reader elsewhere, and no URL
        # but a source's may be in an answer's prose
    # Without a heading path the page's structure is unknown: a line with no closing
    # punctuation is most likely a heading, which answers nothing on its own.
    ending = neutralize_citations(candidate.text).rstrip("\"'”’)` ")[-1:]  # "Marsh.[4]" ends a sentence
    return bool(candidate.section) or ending in ".!?"


def _lead_in(i: int, candidates: list[Passage]) -> int | None:
    """The sentence candidate ``i`` needs before it to read on its own: for a sentence that
    leans back ("This parameter ..."), the one just before it; for a list item, the sentence
    that introduces the list ("Its features are:"), a few items back."""
    chain = i
    for _ in range(12):
        before = candidates[chain - 1] if chain > 0 else None
        if before is None or before.url != candidates[chain].url or not 0 <= candidates[chain].start - before.end <= 2:
            return None
        if before.text.rstrip().endswith(":"):
            return chain - 1
        if candidates[i].text.rstrip()[-1:] in ".!?":  # a sentence of prose leans on the one just before
            return chain - 1
        if before.text.rstrip()[-1:] in ".!?":  # a list item, but the list has no introduction
            return None
        chain -= 1
    return None


def _readable(i: int, candidates: list[Passage], used: set[int]) -> str:
    """Candidate ``i`` as an answer says it: code fenced; a description with the term it
    describes; a sentence that leans on the one before it, or a list item, with what it needs
    (see ``_lead_in``) unless the answer already says that. Adds what it quotes to ``used``."""
    candidate = candidates[i]
    used.add(i)
    if candidate.kind == "code":
        return f"\n```\n{candidate.text}\n```"
    sentence = neutralize_citations(candidate.text, keep_as_code=True).strip()
    leans = _LEANS_BACK.match(sentence) or (candidate.kind != "row" and sentence[-1:] not in ".!?")
    lead = _lead_in(i, candidates) if leans else None
    if lead is not None and lead not in used:
        used.add(lead)
        sentence = f"{neutralize_citations(candidates[lead].text, keep_as_code=True).strip()} {sentence}"
    after = _follows(i, candidates) if sentence.endswith(":") else None
    if after is not None and after not in used:
        used.add(after)
        then = candidates[after]
        sentence += f"\n```\n{then.text}\n```" if then.kind == "code" else \
            f" {neutralize_citations(then.text, keep_as_code=True).strip()}"
    # The section (a definition's term included) is in the citation: the answer's text carries
    # no label of it, nor the page's anchor glyphs ("¶").
    return without_anchor_marks(sentence)


def extractive_answer(question: str | Question, sources: list[Source], candidates: list[Passage],
                      max_sentences: int = 2) -> Answer:
    """The source sentence that best answers ``question``, cited, with its short answer; a
    second sentence only when it adds to the first (see ``_adds``). When no sentence read
    answers (none holds what is asked, or any of its words), the answer is empty: no near-misses."""
    question = analyse(question)
    by_url = {s.url: s for s in sources}
    answer = Answer(question=question.text, sources=sources, extractive=True)
    chosen, seen, used = [], set(), set()
    ranked = [i for i in sorted(range(len(candidates)), key=lambda j: -candidates[j].score)
              if _quotable(i, candidates, question.wants_code)]
    first = next((i for i in ranked if _answers(question, candidates[i])), None)
    if first is None:
        return answer
    best = candidates[first]  # the answer's sentence, and its short answer's
    for i in [first] + [j for j in ranked if j != first]:
        if i in used:
            continue
        if chosen:
            # The answer keeps to the page of its best sentence: another page's sentence joins it
            # only when it scores nearly as well (a weaker one from elsewhere is usually off topic).
            if candidates[i].url != best.url and candidates[i].score < best.score - OTHER_PAGE_MARGIN:
                continue
            if not _adds(question, first, i, candidates):
                continue
        # A page's own "[2]" (a footnote, a list) must not read as a citation of source 2.
        sentence = _readable(i, candidates, used)
        key = sentence.lower()
        if key in seen:
            continue
        seen.add(key)
        chosen.append((i, sentence))
        if len(chosen) == max_sentences:
            break
    parts = []
    for i, sentence in chosen:
        candidate, source = candidates[i], by_url[candidates[i].url]
        # The quote stays the page's exact text (start:end); the answer says it without the page's markers.
        answer.citations.append(make_citation(source.n, source, candidate, sentence, candidate.score, True))
        fenced = sentence.rstrip().endswith("```")  # code: the marker goes on the line after it
        parts.append(f"{sentence.rstrip()}\n[{source.n}]\n" if fenced else with_markers(sentence, [source.n]) + " ")
    answer.text = "".join(parts).strip()
    source = by_url[best.url]
    text = short_answer(question, neutralize_citations(best.text, keep_as_code=True), best.section, source.title)
    if text:
        answer.short_answer = ShortAnswer(text=text, n=source.n)
    return answer


def _answers(question: Question, candidate: Passage) -> bool:
    """Whether ``candidate`` can answer ``question``: it holds the kind of answer asked for (a
    number, a name) and, with its heading and page title, some of the question's words."""
    if question.asks and not gives(question, candidate.text):
        return False
    return bool(keywords(f"{candidate.title} {_near_section(candidate)} {candidate.text}") & question.terms)


# A sentence that states a condition of the one before it ("If ...", "Unless ...") adds to it.
_CONDITION = re.compile(r"^(?:if|unless|only|except|provided|when|whereas|but)\b", re.I)


def _adds(question: Question, first: int, i: int, candidates: list[Passage]) -> bool:
    """Whether candidate ``i`` adds to the answer built on candidate ``first``: the condition
    stated right after it; for a two-part question ("when and where"), the half the first does
    not answer; or words of the question the first does not hold. A neighbouring
    fact, about nothing the question asks that the first does not say, does not."""
    candidate = candidates[i]
    if _follows(first, candidates) == i and _CONDITION.match(candidate.text.strip()):
        return True
    if question.parts:  # the half the first does not answer ("when" without a date)
        missing = [part for part in question.parts if not covers(question, part, candidates[first].text)]
        return any(covers(question, part, candidate.text) for part in missing) and \
            bool(keywords(candidate.text) & question.terms)
    # It says what the question asks about that the first does not ("the maximum length of an
    # identifier" beside a sentence about column names). The page's subject (its title and
    # heading, which the first sentence need not repeat) is no such word.
    said = candidates[first]
    return bool(keywords(candidate.text) & question.terms
                - keywords(f"{said.title} {_near_section(said)} {said.text}"))


def _near_section(passage: Passage) -> str:
    """The innermost heading of a passage: what it is about."""
    return passage.section.rsplit(" › ", 1)[-1] if passage.section else ""
