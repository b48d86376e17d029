"""Chunker: passages of whole paragraphs (or whole sentences of a long paragraph) up to
``chunk_chars`` characters, with offsets into the document text."""

from __future__ import annotations

import re

from localsearch import hookimpl
from localsearch.text import split_sentences
from localsearch.types import Passage

_PARAGRAPH = re.compile(r"[^\n]+")


@hookimpl(trylast=True)
def register_settings(register):
    register("chunk_chars", 600, "largest passage, in characters (a longer sentence stays whole)")


def _units(text: str, limit: int) -> list[tuple[int, int]]:
    """Paragraph spans; a paragraph over ``limit`` becomes its sentence spans."""
    units = []
    for match in _PARAGRAPH.finditer(text):
        start, end = match.span()
        if not text[start:end].strip():
            continue
        if end - start <= limit:
            units.append((start + len(match.group()) - len(match.group().lstrip()), end))
        else:
            units.extend(split_sentences(match.group(), start))
    return units


@hookimpl(trylast=True)
def chunk_document(document, config):
    limit = config.chunk_chars
    passages, current = [], None
    for start, end in _units(document.text, limit):
        if current is not None and end - current[0] <= limit:
            current = (current[0], end)
            continue
        if current is not None:
            passages.append(current)
        current = (start, end)
    if current is not None:
        passages.append(current)
    return [Passage(url=document.url, text=document.text[s:e], start=s, end=e, title=document.title)
            for s, e in passages]
