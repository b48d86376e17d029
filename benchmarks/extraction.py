"""3. Extraction: pages/s through the ``extract_document`` hook vs raw
``trafilatura.bare_extraction`` on the same decoded pages: the test web's eight articles, and
the largest pages of the real manuals (Debian's PostgreSQL, git and Debian Reference HTML),
with the cost per character of the largest pages against the median page's."""

from __future__ import annotations

from .harness import Row, Target, interleave, median, timed

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
                       f"{len(pages)} pages per run"), *real_rows(config, settings)]


def real_rows(config, settings) -> list[Row]:
    """The largest pages of the manuals, and how the cost grows with a page's size."""
    from localsearch.plugins import pm
    from localsearch.types import Page
    from trafilatura import bare_extraction

    from .real_pages import docs_module

    files = sorted((page.file for page in docs_module().index().pages), key=lambda f: f.stat().st_size)
    largest = [(f"file://{f}", f.read_text("utf-8", errors="replace")) for f in files[-6:]]
    middle = [(f"file://{f}", f.read_text("utf-8", errors="replace"))
              for f in files[len(files) // 2 - 10: len(files) // 2 + 10]]

    def extract(pages):
        return timed(lambda: [pm.hook.extract_document(page=Page(url=url, status="ok", html=html), config=config)
                              for url, html in pages])

    def through_trafilatura():
        return len(largest) / timed(lambda: [bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                                             include_tables=True) for url, html in largest])

    runs = interleave({"ours": lambda: len(largest) / extract(largest), "raw": through_trafilatura}, settings.reps)
    sizes = [len(html) for _, html in largest]
    per_char = {"large": [], "middle": []}
    for _ in range(settings.reps):
        per_char["large"].append(1e6 * extract(largest) / sum(sizes))
        per_char["middle"].append(1e6 * extract(middle) / sum(len(html) for _, html in middle))
    slowest = max(timed(lambda: pm.hook.extract_document(page=Page(url=url, status="ok", html=html), config=config))
                  for url, html in largest)
    return [
        Row.paired(BENCH, "largest manual pages: pages/s", runs["ours"], runs["raw"], "pages/s",
                   Target("ratio", ">=", 0.9), f"the {len(largest)} largest pages of the manuals, "
                   f"{min(sizes) // 1000}-{max(sizes) // 1000} K characters of HTML; raw: trafilatura with tables"),
        Row(BENCH, "largest manual page: seconds to extract", slowest, None, "s", Target("figure", "<=", 0.5, "s"),
            note=f"{max(sizes) // 1000} K characters of HTML"),
        Row(BENCH, "cost per character, largest pages vs median pages", median(per_char["large"]),
            median(per_char["middle"]), "µs/char", Target("ratio", "<=", 1.5),
            note=f"median pages: {len(middle)} around the median size; a ratio near 1: cost grows with size, no faster"),
    ]
