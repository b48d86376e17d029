"""Extractor: a page's main content as structured text (headings, paragraphs, list items,
definitions, table rows, code; see ``html_blocks``), with title and date from trafilatura's
metadata. Pages where that finds no content fall back to trafilatura's main-text extraction."""

from __future__ import annotations

import logging
import re
from urllib.parse import urljoin

from localsearch import hookimpl
from localsearch.types import Block, Document, PageImage

from .html_blocks import _BLOCK as _BLOCK_TAGS, page_content, render

logger = logging.getLogger(__name__)


@hookimpl(trylast=True)
def extract_document(page, config):
    from trafilatura.metadata import extract_metadata
    from trafilatura.utils import load_html

    if not page.html.strip():
        return None
    url = page.final_url or page.url
    tree = load_html(page.html)
    if tree is not None and _cut_short(tree):
        # libxml2 stops reading at 255 levels of nesting and drops the rest of the page.
        logger.info("%s nests elements deeper than %d levels: read flattened", page.url, MAX_DEPTH)
        tree = load_html(_flattened(page.html))
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
        fallback = _trafilatura_text(tree, url)  # hidden text already taken out of the tree
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


def _trafilatura_text(tree, url: str) -> str:
    from trafilatura import bare_extraction

    result = bare_extraction(tree, url=url, include_comments=False, include_tables=True, fast=True)
    return (result.text or "").strip() if result is not None else ""


# Past this many levels a page's tags are dropped and their text kept (a block's tag becomes a
# line break): below libxml2's 255, and shallow enough for the walker's recursion.
MAX_DEPTH = 200
_TAG = re.compile(r"<(/?)([A-Za-z][\w:-]*)[^>]*?(/?)>")
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
         "track", "wbr"}


def _cut_short(tree) -> bool:
    """Whether the parsed ``tree`` reaches the depth where libxml2 stops reading."""
    return tree.find("/".join(["*"] * (MAX_DEPTH + 40))) is not None


def _flattened(html: str) -> str:
    """``html`` without the tags nested deeper than MAX_DEPTH (their text stays; a block's
    tag becomes ``<br>``), counted by a tag scan that needs no parser: bounded time and memory
    whatever the nesting."""
    open_tags: list[str] = []
    parts, last, broken = [], 0, False
    for match in _TAG.finditer(html):
        closing, name, empty = match.group(1), match.group(2).lower(), match.group(3)
        if name in _VOID or empty:
            continue
        if closing:
            # A close tag ends the innermost open element of its name, a few levels up at most
            # (an unclosed <p> or <li>); a stray one ends nothing.
            recent = open_tags[-8:]
            if name not in recent:
                continue
            depth = len(open_tags) - recent[::-1].index(name) - 1
            del open_tags[depth:]
        else:
            depth = len(open_tags)
            open_tags.append(name)
        if depth >= MAX_DEPTH:
            between = html[last:match.start()]
            parts.append(between)
            # One break between two texts however many tags end and open there.
            if name in _BLOCK_TAGS and (between.strip() or not broken):
                parts.append("<br>")
                broken = True
            last = match.end()
    parts.append(html[last:])
    return "".join(parts)
