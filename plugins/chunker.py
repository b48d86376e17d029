"""Chunker: passages of whole blocks (paragraphs, list items, definitions, table rows) of one
section, up to ``chunk_chars`` characters, with offsets into the document text. Code is
chunked apart from prose, at line ends; a long paragraph is cut between sentences. Text read
from an image is chunked apart from the page's own, so its passages name the image.

A document without blocks (an extractor that knows no structure) is chunked by its lines."""

from __future__ import annotations

import re

from localsearch import hookimpl
from localsearch.text import split_sentences
from localsearch.types import Block, Passage

_LINE = re.compile(r"[^\n]+")
# Which block kinds may share a passage: prose with its list items; a term with its description;
# rows with rows; code with code.
_GROUP = {"text": "text", "item": "text", "term": "definition", "definition": "definition", "row": "row",
          "code": "code"}


@hookimpl(trylast=True)
def register_settings(register):
    register("chunk_chars", 600, "largest passage, in characters (a longer sentence stays whole)")


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(start + m.start(), start + m.end()) for m in _LINE.finditer(text[start:end]) if m.group().strip()]


def _pieces(text: str, block: Block, limit: int) -> list[tuple[int, int]]:
    """A block's spans: the block itself, or for one over ``limit`` its sentences (code: lines);
    a sentence or line longer than ``LONGEST`` limits is cut between words."""
    if block.end - block.start <= limit:
        return [(block.start, block.end)]
    if _GROUP.get(block.kind) == "code":
        spans = _lines(text, block.start, block.end)
    else:
        spans = []
        for start, end in _lines(text, block.start, block.end):
            spans.extend(split_sentences(text[start:end], start))
    return [piece for span in spans for piece in _cut(text, span, limit * LONGEST)]


LONGEST = 4  # a sentence may run to this many chunk_chars before it is cut


def _cut(text: str, span: tuple[int, int], most: int) -> list[tuple[int, int]]:
    """``span``, or for one longer than ``most`` characters, pieces of at most that, cut at the
    last space before it (a page of one 5 MB "sentence" must not become one passage that every
    later stage carries whole)."""
    start, end = span
    pieces = []
    while end - start > most:
        cut = text.rfind(" ", start + most // 2, start + most)
        cut = cut if cut > start else start + most
        pieces.append((start, cut))
        start = cut + 1 if text[cut:cut + 1] == " " else cut
    pieces.append((start, end))
    return pieces


def _pack(spans: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """Consecutive spans joined while the joined span stays within ``limit``."""
    packed: list[tuple[int, int]] = []
    for start, end in spans:
        if packed and end - packed[-1][0] <= limit:
            packed[-1] = (packed[-1][0], end)
        else:
            packed.append((start, end))
    return packed


def _blocks_of(document) -> list[Block]:
    if document.blocks:
        return [b for b in document.blocks if b.kind != "heading"]  # a heading lives in its section's path
    return [Block(start, end) for start, end in _lines(document.text, 0, len(document.text))]


@hookimpl(trylast=True)
def chunk_document(document, config):
    limit, text = config.chunk_chars, document.text
    runs: list[tuple[str, str, str, list[tuple[int, int]]]] = []  # (section, group, image, spans)
    for block in _blocks_of(document):
        group = _GROUP.get(block.kind, "text")
        if not runs or runs[-1][:3] != (block.section, group, block.image):
            runs.append((block.section, group, block.image, []))
        runs[-1][3].extend(_pieces(text, block, limit))
    return [Passage(url=document.url, text=text[s:e], start=s, end=e, title=document.title,
                    section=section, kind=group, image=image)
            for section, group, image, spans in runs for s, e in _pack(spans, limit)]
