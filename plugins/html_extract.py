"""Extractor: a page's main content as structured text (headings, paragraphs, list items,
definitions, table rows, code; see ``html_blocks``), with title and date from trafilatura's
metadata. Pages where that finds no content fall back to trafilatura's main-text extraction."""

from __future__ import annotations

import logging
from urllib.parse import urljoin

from localsearch import hookimpl
from localsearch.types import Block, Document, PageImage

from .html_blocks import page_content, render

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
    blocks, found_images = page_content(tree)
    # A page's first heading usually repeats its title: the path under it need not say it again.
    blocks = _without_title(blocks, title, found_images)
    images = _page_images(tree, url, found_images)
    text, spans = render(blocks)
    if len(text.split()) < config.min_words:
        fallback = _trafilatura_text(page.html, url)
        if fallback:
            return Document(url=page.url, text=fallback, title=title, date=metadata.date, images=images)
    if not text.strip() and not images:
        logger.info("no main text found in %s", page.url)
        return None  # the pipeline reports the page as "no content"
    return Document(url=page.url, text=text, title=title, date=metadata.date, images=images,
                    blocks=[Block(start, end, block.kind, " › ".join(block.path))
                            for block, (start, end) in zip(blocks, spans)])


def _page_images(tree, url: str, found) -> list[PageImage]:
    """The content's images with absolute addresses (against ``<base href>``, else the page's
    URL), each once; only http(s) and ``data:`` images, the ones an image reader may get."""
    base = next((str(href) for href in tree.xpath("//head/base/@href")), "")
    base = urljoin(url, base) if base else url
    images, seen = [], set()
    for image in found:
        address = image.src if image.src.startswith("data:") else urljoin(base, image.src)
        if address in seen or not address.lower().startswith(("http://", "https://", "data:image/")):
            continue
        seen.add(address)
        images.append(PageImage(address, image.alt, " › ".join(image.path), image.width, image.height))
    return images


def _title(tree) -> str:
    """The page's own name for itself: its ``og:title``, else its ``<title>``. (trafilatura's
    guess prefers a heading when the title is short, and took "Note" for psql's page.)"""
    for query in ("//meta[@property='og:title']/@content", "//head/title/text()"):
        found = [" ".join(str(v).split()) for v in tree.xpath(query)]
        if found and found[0]:
            return found[0]
    return ""


def _without_title(blocks, title: str, images=()):
    folded = " ".join(title.lower().split())
    heads = [b for b in blocks if b.kind == "heading"]
    if not heads or not folded:
        return blocks
    first = heads[0]
    if not first.path or not (first.text.lower() in folded or folded in first.text.lower()):
        return blocks
    cut = first.path[0]
    for block in [*blocks, *images]:
        if block.path[:1] == (cut,):
            block.path = block.path[1:]
    return blocks


def _trafilatura_text(html: str, url: str) -> str:
    from trafilatura import bare_extraction

    result = bare_extraction(html, url=url, include_comments=False, include_tables=True, fast=True)
    return (result.text or "").strip() if result is not None else ""
