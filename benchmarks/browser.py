"""9. Browser fetch: pages per second read through the browser fetcher (``browser_fetch =
always``: every request checked and fetched by our guarded client, a fresh context per page)
vs raw Playwright reading the same pages in the same Chromium, as many at once, with nothing
checked. Both run on a browser already started."""

from __future__ import annotations

import asyncio
import time

from .harness import Row, Target, interleave

BENCH = "9 Browser fetch"
PAGES_AT_ONCE = 4  # browser_pages, for both
PAGES = 16


def page_urls(web, count: int) -> list[str]:
    from .corpus import articles

    slugs = [a.slug for a in articles()]
    urls = [f"{web.url}/articles/{slugs[i % len(slugs)]}?n={i}" for i in range(count - 1)]
    return urls + [web.url + "/app"]  # and one page built by script


def run(config, settings, web) -> list[Row]:
    from localsearch import documents
    from localsearch.events import Run
    from localsearch.pipeline import Pipeline
    from localsearch.urlpolicy import UrlPolicy
    from localsearch_plugins.chromium import SETTLE_SECONDS, find_browser

    config = config.replace(browser_fetch="always", browser_pages=PAGES_AT_ONCE)
    pipeline = Pipeline(config)
    policy = UrlPolicy.from_config(config)
    urls = page_urls(web, PAGES)
    failures: list[str] = []

    def through_localsearch():
        started = time.perf_counter()
        pages = documents.fetch(urls, policy, pipeline.workers, Run(config))
        seconds = time.perf_counter() - started
        failures.extend(f"{p.url}: {p.status} {p.reason}" for p in pages if not p.ok)
        return len(urls) / seconds

    loop = asyncio.new_event_loop()
    raw = loop.run_until_complete(_raw_browser(find_browser(config.get("browser_path", ""))))

    def with_playwright():
        started = time.perf_counter()
        loop.run_until_complete(_read_all(raw, urls, SETTLE_SECONDS))
        return len(urls) / (time.perf_counter() - started)

    try:
        runs = interleave({"ours": through_localsearch, "raw": with_playwright}, settings.reps)
    finally:
        loop.run_until_complete(raw["playwright"].stop())
        loop.close()
        pipeline.close()
    note = (f"{len(urls)} test-web pages, {PAGES_AT_ONCE} at once, a context per page"
            + (f"; {len(failures)} failed, e.g. {failures[0]}" if failures else ""))
    return [Row.paired(BENCH, "pages per second", runs["ours"], runs["raw"], "pages/s",
                       Target("ratio", ">=", 0.9), note)]


async def _raw_browser(executable: str) -> dict:
    from playwright.async_api import async_playwright

    playwright = await async_playwright().start()
    browser = await playwright.chromium.launch(executable_path=executable, headless=True)
    return {"playwright": playwright, "browser": browser}


async def _read_all(raw: dict, urls: list[str], settle: float) -> None:
    limit = asyncio.Semaphore(PAGES_AT_ONCE)

    async def read(url: str) -> str:
        async with limit:
            context = await raw["browser"].new_context()
            try:
                page = await context.new_page()
                await page.goto(url, wait_until="domcontentloaded")
                try:
                    await page.wait_for_load_state("networkidle", timeout=settle * 1000)
                except Exception:
                    pass
                return await page.content()
            finally:
                await context.close()

    await asyncio.gather(*(read(url) for url in urls))
