"""Extractor: trafilatura's main-text extraction, with title, date and URL."""

from __future__ import annotations

import logging

from localsearch import hookimpl
from localsearch.types import Document

logger = logging.getLogger(__name__)


@hookimpl(trylast=True)
def extract_document(page, config):
    from trafilatura import bare_extraction

    if not page.html.strip():
        return None
    result = bare_extraction(page.html, url=page.final_url or page.url, with_metadata=True,
                             include_comments=False, include_tables=True)
    if result is None or not (result.text or "").strip():
        logger.info("trafilatura found no main text in %s", page.url)
        return None  # the pipeline reports the page as "no content"
    return Document(url=page.url, text=result.text.strip(), title=(result.title or "").strip(), date=result.date)
