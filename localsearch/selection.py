"""Sentence selection: which source sentences a question's answer is built from.

A function of its inputs (the question, the settings, the stored and the new passages, and an
embedder), so it can be read, tested and measured alone.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from .question import Question, analyse, gives
from .text import bm25_scores, code_terms, dot, keyword_scores, keywords, split_sentences
from .types import Passage

__all__ = ["Selection", "select", "answer_units"]

DEFINITION_UNIT = 400  # a paragraph of a definition up to this many characters is one answer unit


@dataclass
class Selection:
    """The best passages (shown by ``search``), every candidate sentence with its score and
    vector (the grounding check compares answer sentences with them), and the sentences that
    fill the prompt budget, best first."""

    passages: list[Passage] = field(default_factory=list)
    candidates: list[Passage] = field(default_factory=list)
    candidate_vectors: list[list[float]] = field(default_factory=list)
    prompt_passages: list[Passage] = field(default_factory=list)


def select(question: str | Question, config, stored: list[Passage], fresh: list[Passage], query_vector: list[float],
           embed, focus: str = "", ranking: list[str] | None = None) -> Selection:
    """Score the sentences of ``stored`` passages (from the store, with their similarity as
    score) and of ``fresh`` ones (new pages, not embedded yet) by meaning and by the
    question's rarer words.

    ``focus`` (text the user selected on a page) adds its words to the question's for the
    word score, so that sentences about the selection rank higher. ``ranking`` (the pages'
    URLs in the search engine's order) adds ``search_rank_bonus``, most for the first page.
    """
    question = analyse(question)
    words_of = f"{question.text} {focus}".strip()
    # New pages are not embedded yet (that waits until after the answer, as embedding every
    # passage of five pages takes seconds): their passages are picked by words, their section
    # headings included ("max_connections" names the section that answers about it). Stored
    # ones are picked by words and by meaning in turn: the nearest by meaning restate the
    # question, and the one naming the setting can be far down. Every sentence of those picked
    # is embedded before the answer.
    wanted = config.top_k * config.candidate_factor
    by_meaning = sorted(stored, key=lambda p: -p.score)
    passages = _fused(_by_words(words_of, stored), by_meaning)[:wanted]
    passages += [dataclasses.replace(passage, score=None) for passage in _by_words(words_of, fresh)[:wanted]]

    candidates: list[Passage] = []
    owners: list[int] = []  # the passage each candidate sentence comes from
    for i, passage in enumerate(passages):
        for start, end in answer_units(passage):
            text = passage.text[start - passage.start: end - passage.start]
            if len(text.split()) >= 2:
                candidates.append(dataclasses.replace(passage, text=text, start=start, end=end))
                owners.append(i)
    # The page's title and the section's words count in the word score (the subject every
    # sentence of the page shares need not be repeated in the one that answers), and a section
    # named for what the question names earns a bonus, below. Embedding each sentence with its
    # heading was tried and cost more on the test web's articles (80% -> 75%) than it gained
    # on the manuals (76% -> 78%); only a definition's sentence is embedded with its term.
    vectors = embed([_as_read(c) for c in candidates], "passage") if candidates else []
    lexical = keyword_scores(words_of, [f"{c.title} {_near_section(c)} {c.text}" for c in candidates])
    similarity = [dot(query_vector, vector) for vector in vectors]

    # A new page's passage has no vector of its own: the mean of its sentences' stands in.
    members: dict[int, list[list[float]]] = {}
    for owner, vector in zip(owners, vectors):
        members.setdefault(owner, []).append(vector)
    for i, passage in enumerate(passages):
        if passage.score is None:
            centroid = [sum(column) for column in zip(*members[i])] if i in members else []
            norm = sum(x * x for x in centroid) ** 0.5 or 1.0
            passage.score = round(dot(query_vector, centroid) / norm, 4) if centroid else 0.0

    weight, names = config.keyword_weight, question.names
    # The search engine ranked the pages by more than this question's words (titles, links, what
    # people open): where two pages say the same, the one it put first is the better source. The
    # page the browser sends with "ask about this page" comes first.
    ranking = ranking or []
    place: dict[str, float] = {}
    for i, url in enumerate(ranking):
        place.setdefault(url, 1 - i / len(ranking))  # a URL listed twice keeps its better place
    first_under: dict[tuple[str, str], Passage] = {}  # the first sentence read under each heading
    for candidate in sorted(candidates, key=lambda c: c.start):
        first_under.setdefault((candidate.url, candidate.section), candidate)
    for candidate, owner, closeness, words in zip(candidates, owners, similarity, lexical):
        # Meaning alone ranks the page's lead sentence first for every question about the
        # page; the question's rarer words find the sentence that answers this one.
        meaning = 0.75 * closeness + 0.25 * passages[owner].score
        candidate.score = (1 - weight) * meaning + weight * words
        # "How many members" is answered by the sentence with a number in it, not by the one
        # that best restates the question.
        if question.asks and gives(question, candidate.text):
            candidate.score += config.answer_kind_bonus
        # A question that names a setting, option or function is answered in the section
        # named for it, not in the other pages that mention it in passing.
        if names and names & _names(candidate.section.rsplit(" › ", 1)[-1]):
            candidate.score += config.section_name_bonus
        if question.kind == "definition" and _defines(question, candidate, candidate is first_under.get(
                (candidate.url, candidate.section))):
            candidate.score += config.definition_bonus
        candidate.score += config.search_rank_bonus * place.get(candidate.url, 0.0)
        candidate.score = round(candidate.score, 4)

    best = [0.0] * len(passages)
    for owner, candidate in zip(owners, candidates):
        best[owner] = max(best[owner], candidate.score)
    order = sorted(range(len(passages)), key=lambda i: -best[i])
    budget, chosen = config.prompt_chars, []
    for candidate in sorted(candidates, key=lambda c: -c.score):
        if len(candidate.text) + 1 > budget:
            continue
        budget -= len(candidate.text) + 1
        chosen.append(candidate)
    return Selection(passages=[passages[i] for i in order[: config.top_k]], candidates=candidates,
                     candidate_vectors=vectors, prompt_passages=chosen)


def answer_units(passage: Passage) -> list[tuple[int, int]]:
    """The spans of ``passage`` an answer can quote (document offsets): the sentences of its
    prose lines, each table row whole, and a code passage whole (code is never split into
    "sentences"; whether it may be quoted is the answer's choice)."""
    if passage.kind == "code":
        return [(passage.start, passage.end)]
    units, offset = [], passage.start
    for line in passage.text.split("\n"):
        if line.strip():
            # A row, and a short paragraph of a definition, is read whole: "The default is
            # five minutes" is the description's second sentence.
            if passage.kind == "row" or (passage.kind == "definition" and len(line) <= DEFINITION_UNIT):
                units.append((offset + len(line) - len(line.lstrip()), offset + len(line.rstrip())))
            else:
                units.extend(split_sentences(line, offset))
        offset += len(line) + 1
    return units


_DEFINES = r"^(?:(?:an?|the)\s+)?`?{subject}`?s?\s*(?:\([^)]*\)\s*)?(?:is|are|was|means|refers\s+to|stands\s+for|denotes)\b"


def _defines(question: Question, candidate: Passage, first_under_heading: bool) -> bool:
    """Whether ``candidate`` defines what ``question`` (a "what is X") asks about: it describes
    a glossary or list term naming X, says "X is ...", or comes first under a heading naming X."""
    subject = keywords(question.subject)
    if not subject:
        return False
    heading = candidate.section.rsplit(" › ", 1)[-1] if candidate.section else ""
    if (candidate.kind == "definition" or first_under_heading) and heading and subject <= keywords(heading):
        return True
    pattern = _DEFINES.format(subject=r"\s+".join(map(re.escape, question.subject.split())))
    return re.match(pattern, candidate.text.replace("`", ""), re.I) is not None


def _by_words(question: str, passages: list[Passage]) -> list[Passage]:
    """``passages`` best first by the question's words (BM25 over section and text)."""
    scores = bm25_scores(question, [f"{p.section} {p.text}" for p in passages])
    return [passages[i] for i in sorted(range(len(passages)), key=lambda i: -scores[i])]


def _fused(*rankings: list[Passage]) -> list[Passage]:
    """One ranking from several of the same passages, taking from each in turn: the best of
    every ranking comes before the second best of any."""
    fused: dict[str, Passage] = {}
    for rank in range(max(map(len, rankings), default=0)):
        for ranking in rankings:
            if rank < len(ranking):
                fused.setdefault(ranking[rank].id, ranking[rank])
    return list(fused.values())


def _as_read(candidate: Passage) -> str:
    """The text of a candidate sentence as a reader understands it: a definition's sentence
    ("The default value is four megabytes") is about its term (``work_mem``), which is only in
    the heading path."""
    if candidate.kind == "definition" and candidate.section:
        return f"{candidate.section.rsplit(' › ', 1)[-1]}: {candidate.text}"
    return candidate.text


def _near_section(passage: Passage) -> str:
    """The innermost two parts of a passage's heading path: what it is about, without the
    chapter titles every passage of the page shares."""
    return " › ".join(passage.section.split(" › ")[-2:]) if passage.section else ""


def _names(text: str) -> set[str]:
    """The technical names ``text`` mentions (see ``code_terms``), lower-cased."""
    return {name.lower() for name in code_terms(text)}
