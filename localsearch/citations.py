"""Grounding: tie every answer sentence to a fetched passage, or flag it.

A small model cannot be trusted to write [n] correctly, so its markers are only a hint: each
sentence is compared (by embedding similarity) with the candidate sentences of the sources;
markers that name no source are removed, cited sentences the passage does not support are
flagged, and uncited sentences get the source that supports them, if any does.
"""

from __future__ import annotations

import re

from .text import CITATION_RE, dot, split_sentences
from .types import Answer, Citation, Passage, Source

__all__ = ["ground_answer", "extractive_answer"]

# "capital. [1]" -> "capital [1]." so that a marker after the full stop stays with its sentence.
_MARKER_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])+)")
_MIN_WORDS = 3


def _citation(n: int, source: Source, candidate: Passage, sentence: str, score: float,
              supported: bool) -> Citation:
    return Citation(n=n, url=source.url, title=source.title, quote=candidate.text,
                    supported=supported, sentence=sentence, score=round(score, 3),
                    start=candidate.start, end=candidate.end)


def ground_answer(question: str, text: str, sources: list[Source], candidates: list[Passage],
                  candidate_vectors: list[list[float]], embed, threshold: float) -> Answer:
    """Check the citations of a generated ``text`` against ``candidates`` (sentence passages).

    ``embed(texts)`` returns normalised vectors for answer sentences.
    """
    by_url = {s.url: s for s in sources}
    by_n = {s.n: s for s in sources}
    per_source: dict[int, list[int]] = {}
    for i, candidate in enumerate(candidates):
        per_source.setdefault(by_url[candidate.url].n, []).append(i)

    text = _MARKER_AFTER_STOP.sub(lambda m: m.group(2) + m.group(1), text.strip())
    sentences = [text[a:b] for a, b in split_sentences(text)]
    parsed = []
    for sentence in sentences:
        numbers = [int(n) for group in CITATION_RE.findall(sentence) for n in re.split(r"[,;]", group)]
        clean = CITATION_RE.sub("", sentence).strip()
        parsed.append((clean, list(dict.fromkeys(numbers))))
    checkable = [i for i, (clean, _) in enumerate(parsed) if len(clean.split()) >= _MIN_WORDS]
    vectors = dict(zip(checkable, embed([parsed[i][0] for i in checkable]))) if checkable else {}

    answer = Answer(question=question, sources=sources)
    rebuilt = []
    for i, (clean, numbers) in enumerate(parsed):
        if i not in vectors or not candidates:
            rebuilt.append(clean)
            continue
        vector = vectors[i]
        scores = [dot(vector, v) for v in candidate_vectors]
        cited = []
        for n in numbers:
            if n not in per_source:  # names no source we read: never keep it
                continue
            best = max(per_source[n], key=lambda j: scores[j])
            supported = scores[best] >= threshold
            answer.citations.append(_citation(n, by_n[n], candidates[best], clean, scores[best], supported))
            cited.append((n, supported))
        if not any(supported for _, supported in cited):
            best = max(range(len(candidates)), key=lambda j: scores[j])
            if scores[best] >= threshold:
                n = by_url[candidates[best].url].n
                if n not in [c for c, _ in cited]:
                    answer.citations.append(_citation(n, by_n[n], candidates[best], clean, scores[best], True))
                    cited.append((n, True))
            elif not cited:
                answer.unsupported.append(clean)
        rebuilt.append(_with_markers(clean, [n for n, _ in cited]))
    answer.text = " ".join(rebuilt)
    return answer


def _with_markers(sentence: str, numbers: list[int]) -> str:
    if not numbers:
        return sentence
    markers = "".join(f"[{n}]" for n in numbers)
    if sentence[-1:] in ".!?":
        return f"{sentence[:-1]} {markers}{sentence[-1]}"
    return f"{sentence} {markers}"


def extractive_answer(question: str, sources: list[Source], candidates: list[Passage],
                      scores: list[float], max_sentences: int = 3) -> Answer:
    """The best-matching source sentences, each cited: an answer that needs no LLM."""
    by_url = {s.url: s for s in sources}
    answer = Answer(question=question, sources=sources, extractive=True)
    chosen, seen = [], set()
    for i in sorted(range(len(candidates)), key=lambda j: -scores[j]):
        sentence = candidates[i].text.strip()
        key = sentence.lower()
        if len(sentence.split()) < 5 or key in seen:
            continue
        seen.add(key)
        chosen.append(i)
        if len(chosen) == max_sentences:
            break
    parts = []
    for i in chosen:
        candidate, source = candidates[i], by_url[candidates[i].url]
        answer.citations.append(_citation(source.n, source, candidate, candidate.text, scores[i], True))
        parts.append(_with_markers(candidate.text.strip(), [source.n]))
    answer.text = " ".join(parts)
    return answer
