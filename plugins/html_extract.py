"""Extractor: a page's main content as structured text (headings, paragraphs, list items,
definitions, table rows, code; see ``html_blocks``), with title and date from trafilatura's
metadata. Pages where that finds no content fall back to trafilatura's main-text extraction."""

from __future__ import annotations

import logging

from localsearch import hookimpl
from localsearch.types import Block, Document

from .html_blocks import page_blocks, render

logger = logging.getLogger(__name__)


@hookimpl(trylast=True)
def extract_document(page, config):
    from trafilatura.metadata import extract_metadata
    from trafilatura.utils import load_html

    if not page.html.strip():
        return None
    url = page.final_url or page.url
    tree = load_html(page.html)
    if tree is None:
        return None
    metadata = extract_metadata(tree, default_url=url, extensive=False)
    title = _title(tree) or (metadata.title or page.title or "").strip()
    blocks = page_blocks(tree)
    # A page's first heading usually repeats its title: the path under it need not say it again.
    blocks = _without_title(blocks, title)
    text, spans = render(blocks)
    if len(text.split()) < config.min_words:
        fallback = _trafilatura_text(page.html, url)
        if fallback:
            return Document(url=page.url, text=fallback, title=title, date=metadata.date)
    if not text.strip():
        logger.info("no main text found in %s", page.url)
        return None  # the pipeline reports the page as "no content"
    return Document(url=page.url, text=text, title=title, date=metadata.date,
                    blocks=[Block(start, end, block.kind, " › ".join(block.path))
                            for block, (start, end) in zip(blocks, spans)])


def _title(tree) -> str:
    """The page's own name for itself: its ``og:title``, else its ``<title>``. (trafilatura's
    guess prefers a heading when the title is short, and took "Note" for psql's page.)"""
    for query in ("//meta[@property='og:title']/@content", "//head/title/text()"):
        found = [" ".join(str(v).split()) for v in tree.xpath(query)]
        if found and found[0]:
            return found[0]
    return ""


def _without_title(blocks, title: str):
    folded = " ".join(title.lower().split())
    heads = [b for b in blocks if b.kind == "heading"]
    if not heads or not folded:
        return blocks
    first = heads[0]
    if not first.path or not (first.text.lower() in folded or folded in first.text.lower()):
        return blocks
    cut = first.path[0]
    for block in blocks:
        if block.path[:1] == (cut,):
            block.path = block.path[1:]
    return blocks


def _trafilatura_text(html: str, url: str) -> str:
    from trafilatura import bare_extraction

    result = bare_extraction(html, url=url, include_comments=False, include_tables=True, fast=True)
    return (result.text or "").strip() if result is not None else ""
