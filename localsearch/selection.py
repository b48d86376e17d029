"""Sentence selection: which source sentences a question's answer is built from.

A function of its inputs (the question, the settings, the stored and the new passages, and an
embedder), so it can be read, tested and measured alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .citations import asked_for, gives
from .text import dot, keyword_scores, split_sentences
from .types import Passage

__all__ = ["Selection", "select"]


@dataclass
class Selection:
    """The best passages (shown by ``search``), every candidate sentence with its score and
    vector (the grounding check compares answer sentences with them), and the sentences that
    fill the prompt budget, best first."""

    passages: list[Passage] = field(default_factory=list)
    candidates: list[Passage] = field(default_factory=list)
    candidate_vectors: list[list[float]] = field(default_factory=list)
    prompt_passages: list[Passage] = field(default_factory=list)


def select(question: str, config, stored: list[Passage], fresh: list[Passage], query_vector: list[float],
           embed, focus: str = "") -> Selection:
    """Score the sentences of ``stored`` passages (nearest in the store, with scores) and of
    ``fresh`` ones (new pages, not embedded yet) by meaning and by the question's rarer words.

    ``focus`` (text the user selected on a page) adds its words to the question's for the
    word score, so that sentences about the selection rank higher.
    """
    words_of = f"{question} {focus}".strip()
    # New pages are not embedded yet (that waits until after the answer, as embedding every
    # passage of five pages takes seconds): their passages are picked by words, fewer than
    # for stored pages, as every sentence of these is embedded before the answer.
    by_words = keyword_scores(words_of, [p.text for p in fresh])
    ranked = sorted(range(len(fresh)), key=lambda i: -by_words[i])
    passages = list(stored) + [dataclasses.replace(fresh[i], score=None) for i in ranked[: config.top_k * 2]]

    candidates: list[Passage] = []
    owners: list[int] = []  # the passage each candidate sentence comes from
    for i, passage in enumerate(passages):
        for start, end in split_sentences(passage.text, passage.start):
            text = passage.text[start - passage.start: end - passage.start]
            if len(text.split()) >= 3:
                candidates.append(Passage(url=passage.url, text=text, start=start, end=end,
                                          title=passage.title, score=passage.score))
                owners.append(i)
    vectors = embed([c.text for c in candidates], "passage") if candidates else []
    lexical = keyword_scores(words_of, [c.text for c in candidates])
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

    weight, kind = config.keyword_weight, asked_for(question)
    for candidate, owner, closeness, words in zip(candidates, owners, similarity, lexical):
        # Meaning alone ranks the page's lead sentence first for every question about the
        # page; the question's rarer words find the sentence that answers this one.
        meaning = 0.75 * closeness + 0.25 * passages[owner].score
        candidate.score = (1 - weight) * meaning + weight * words
        # "How many members" is answered by the sentence with a number in it, not by the one
        # that best restates the question.
        if kind and gives(kind, question, candidate.text):
            candidate.score += config.answer_kind_bonus
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
