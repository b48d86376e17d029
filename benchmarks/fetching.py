"""4. Fetch concurrency: 20 pages that the test web holds back 300 ms each, fetched through the
pipeline's fetch stage, vs one such page fetched with plain httpx."""

from __future__ import annotations

from .harness import Row, Target, interleave, timed

BENCH = "4 Fetch"


def delayed_urls(web, count: int, delay_ms: int) -> list[str]:
    """``count`` distinct URLs (a query string apiece) of articles served after ``delay_ms``."""
    from .corpus import articles

    slugs = [a.slug for a in articles()]
    return [f"{web.url}/delay/{delay_ms}/{slugs[i % len(slugs)]}?n={i}" for i in range(count)]


def run(config, settings, web) -> list[Row]:
    import httpx

    from localsearch import documents
    from localsearch.events import Run
    from localsearch.pipeline import Pipeline
    from localsearch.urlpolicy import UrlPolicy

    pipeline = Pipeline(config)
    policy = UrlPolicy.from_config(config)
    urls = delayed_urls(web, settings.fetch_pages, settings.fetch_delay_ms)
    failures: list[str] = []

    def through_localsearch():
        pages = []
        seconds = timed(lambda: pages.extend(documents.fetch(urls, policy, pipeline.workers, Run(config))))
        failures.extend(f"{p.url}: {p.status} {p.reason}" for p in pages if not p.ok)
        return seconds

    def one_page_with_httpx():
        return timed(lambda: httpx.get(urls[0], timeout=10).raise_for_status())

    runs = interleave({"ours": through_localsearch, "raw": one_page_with_httpx}, settings.reps)
    note = (f"{len(urls)} pages × {settings.fetch_delay_ms} ms, fetch_concurrency {config.fetch_concurrency}"
            + (f"; {len(failures)} failed fetches, e.g. {failures[0]}" if failures else ""))
    return [Row.paired(BENCH, f"{len(urls)} pages vs 1 page, seconds", runs["ours"], runs["raw"], "s",
                       Target("ratio", "<=", 2.0), note)]
