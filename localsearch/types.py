"""Small data types passed between the pipeline stages and to front ends.

Everything here is a plain dataclass with ``to_dict()`` so it can cross the CLI's ``--json``
output and the native-messaging channel unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SearchResult",
    "Page",
    "Block",
    "PageImage",
    "Document",
    "Passage",
    "Source",
    "Citation",
    "Answer",
    "ShortAnswer",
    "Event",
    "FetchStatus",
    "ImageFile",
    "ImageText",
]


class _Dict:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class FetchStatus:
    """The per-URL statuses a fetch or extract can end in (strings, so JSON stays plain)."""

    OK = "ok"
    CACHED = "cached"
    TIMEOUT = "timeout"
    TOO_LARGE = "too large"
    NOT_HTML = "not HTML"
    HTTP_ERROR = "HTTP error"
    REDIRECT_LOOP = "redirect loop"
    ERROR = "error"
    NO_CONTENT = "no content"
    NO_FETCHER = "no fetcher"
    BLOCKED = "blocked"  # the URL policy refused it (a private address, a file: URL, ...)
    NOT_IMAGE = "not an image"  # an image URL that answered with something else


@dataclass
class SearchResult(_Dict):
    """One hit from a search engine."""

    url: str
    title: str = ""
    snippet: str = ""
    engine: str = ""
    rank: int = 0
    score: float = 0.0


@dataclass
class Page(_Dict):
    """What a fetcher got for a URL: decoded HTML on success, a status and reason otherwise."""

    url: str
    status: str
    final_url: str = ""
    html: str = ""
    content_type: str = ""
    http_status: int | None = None
    reason: str = ""
    seconds: float = 0.0
    title: str = ""  # what the fetcher knows of it (the browser's tab title); extraction may find better

    @property
    def ok(self) -> bool:
        return self.status == FetchStatus.OK


@dataclass
class Block(_Dict):
    """A structural unit of a document's text: ``text[start:end]`` is one heading, paragraph
    (``text``), list ``item``, definition ``term`` or its ``definition``, table ``row`` or
    ``code`` block; ``section`` is the heading path it sits under (``"A › B"``), the terms of
    a definition included."""

    start: int
    end: int
    kind: str = "text"
    section: str = ""
    image: str = ""  # the URL of the image this text was read from (OCR), "" for the page's own text


@dataclass
class PageImage(_Dict):
    """An image in a page's main content: where it is, what its alt text says, the section it
    sits in, and its size as the HTML states it (0 when not stated)."""

    url: str
    alt: str = ""
    section: str = ""
    width: int = 0
    height: int = 0


@dataclass
class Document(_Dict):
    """Extracted main text of a page, with the metadata a citation shows. ``blocks``, when the
    extractor knows the page's structure, cover the text in order; the chunker follows them."""

    url: str
    text: str
    title: str = ""
    date: str | None = None
    fetched_at: float = 0.0
    content_hash: str = ""
    blocks: list[Block] = field(default_factory=list)
    images: list[PageImage] = field(default_factory=list)  # found by the extractor, for image_text


@dataclass
class Passage(_Dict):
    """A span of a document: ``text == document.text[start:end]``. ``section`` is the heading
    path it sits under; ``kind`` is ``text`` (prose and list items), ``definition`` (a term
    and its description: the term is the last part of ``section``), ``row`` (table rows) or
    ``code``. ``image`` is the URL of the image its text was read from, if it was."""

    url: str
    text: str
    start: int
    end: int
    title: str = ""
    score: float = 0.0
    section: str = ""
    kind: str = "text"
    image: str = ""

    @property
    def id(self) -> str:
        return f"{self.url}#{self.start}-{self.end}"


@dataclass
class Source(_Dict):
    """A numbered source of one answer: a URL we fetched (or had cached) for this question."""

    n: int
    url: str
    title: str
    status: str
    reason: str = ""


@dataclass
class Citation(_Dict):
    """An answer sentence tied to the source passage that is meant to support it."""

    n: int
    url: str
    title: str
    quote: str
    supported: bool
    sentence: str = ""
    score: float = 0.0
    start: int = 0
    end: int = 0
    reason: str = ""
    section: str = ""  # the heading path of the quote on its page, shown beside the title
    image: str = ""  # the image on that page the quote was read from (OCR), if it was


@dataclass
class ShortAnswer(_Dict):
    """The direct answer, read first: the shortest text of source ``n`` that answers."""

    text: str
    n: int


@dataclass
class Answer(_Dict):
    """The final answer: text with [n] markers, its citations and the numbered sources."""

    question: str
    text: str = ""
    citations: list[Citation] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    model: str | None = None
    extractive: bool = False
    short_answer: ShortAnswer | None = None


@dataclass
class Event(_Dict):
    """One step of a question's progress, as the pipeline streams it to a front end.

    ``type`` is one of: ``stage_start``, ``stage_end`` (data: stage, seconds, detail),
    ``search_results``, ``page`` (one URL's fetch/extract status), ``extractive_answer``,
    ``answer_delta`` (data: text), ``answer`` (the final Answer), ``error``, ``done``.
    """

    type: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImageFile:
    """What a fetcher got for an image URL (``fetch_image``): its bytes, or a status and reason."""

    url: str
    status: str
    final_url: str = ""
    data: bytes = b""
    content_type: str = ""
    http_status: int | None = None
    reason: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == FetchStatus.OK


@dataclass
class ImageText(_Dict):
    """Text read from an image (``image_text``): where it is and how sure the reader is."""

    text: str
    box: list = field(default_factory=list)  # four [x, y] corners, in the image's pixels
    confidence: float = 0.0
    kind: str = "ocr"
