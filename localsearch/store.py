"""What a vector store plugin provides (the ``vector_store`` hook returns one of these)."""

from __future__ import annotations

from typing import Protocol

from .types import Document, Passage

__all__ = ["Store"]


class Store(Protocol):
    """A vector index of passages plus a page cache keyed by URL."""

    def get_document(self, url: str) -> Document | None:
        """The cached document for ``url`` (with ``fetched_at`` and ``content_hash``), or None."""

    def add_document(self, document: Document, passages: list[Passage],
                     vectors: list[list[float]]) -> None:
        """Store a document and its passages, replacing whatever was stored for its URL."""

    def touch(self, url: str, fetched_at: float) -> None:
        """Record that ``url`` was fetched again and its content had not changed."""

    def query(self, vector: list[float], k: int, urls: list[str] | None = None) -> list[Passage]:
        """The ``k`` passages nearest ``vector`` (best first, ``score`` = cosine similarity),
        only from ``urls`` when given."""

    def count(self) -> int:
        """How many passages are stored."""
