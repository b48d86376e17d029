"""3. Extraction: pages/s through the ``extract_document`` hook vs raw
``trafilatura.bare_extraction`` on the same decoded pages (the test web's eight articles)."""

from __future__ import annotations

from .harness import Row, Target, interleave, timed

BENCH = "3 Extraction"


def run(config, settings) -> list[Row]:
    from localsearch.plugins import pm
    from localsearch.types import Page
    from trafilatura import bare_extraction

    from .corpus import html_pages

    pages = list(html_pages()) * settings.extract_loops
    wrapped = [Page(url=url, status="ok", final_url=url, html=html) for url, html in pages]

    def through_localsearch():
        return len(wrapped) / timed(lambda: [pm.hook.extract_document(page=p, config=config) for p in wrapped])

    def through_trafilatura():
        return len(pages) / timed(lambda: [bare_extraction(html, url=url, with_metadata=True, include_comments=False)
                                           for url, html in pages])

    runs = interleave({"ours": through_localsearch, "raw": through_trafilatura}, settings.reps)
    return [Row.paired(BENCH, "pages/s", runs["ours"], runs["raw"], "pages/s", Target("ratio", ">=", 0.9),
                       f"{len(pages)} pages per run")]
