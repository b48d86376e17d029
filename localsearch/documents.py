"""Pages to documents: the page cache, fetching (under the URL policy), extraction, chunking
and storing. Each step is a generator of ``page`` events whose return value is its result.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from . import page_images
from .errors import PluginError
from .events import Run
from .outgoing import carry, recording
from .plugins import pm
from .types import Document, Event, FetchStatus, Page, Passage
from .workers import Workers

__all__ = ["Pages", "lookup", "fetch", "read", "chunk", "store_passages"]


@dataclass
class Pages:
    """What reading a list of URLs gave: documents and a status for every URL, and the pages
    whose text is new (chunked, not yet embedded or stored)."""

    documents: dict[str, Document] = field(default_factory=dict)
    statuses: dict[str, tuple[str, str]] = field(default_factory=dict)
    new: list[tuple[Document, list[Passage]]] = field(default_factory=list)
    cached: dict[str, Document | None] = field(default_factory=dict)  # looked up once per question

    def set(self, url: str, status: str, reason: str = "", **detail) -> Event:
        self.statuses[url] = (status, reason)
        return Event("page", {"url": url, "status": status, **({"reason": reason} if reason else {}), **detail})


def lookup(urls: list[str], store, run: Run, pages: Pages, refresh: bool = False,
           pending=None) -> tuple[list[str], list[Event]]:
    """The URLs that must be fetched; fresh cached pages, pages read but not stored yet
    (``pending(url)``, see ``indexing``) and, offline, missing ones are settled in ``pages``
    with their events."""
    config, now, to_fetch, events = run.config, time.time(), [], []

    def usable(document: Document | None) -> bool:
        """A copy that stands in for fetching: one read recently enough, or any, offline."""
        return document is not None and not refresh and (
            config.offline or now - document.fetched_at < config.freshness_hours * 3600)

    for url in urls:
        held = pending(url) if pending is not None else None
        if held is not None and usable(held[0]):
            # Read by an earlier question and still waiting to be stored: its passages are
            # used as a new page's are, and it is queued again with this question's pages.
            pages.documents[url] = held[0]
            pages.new.append(held)
            events.append(pages.set(url, FetchStatus.CACHED, title=held[0].title))
            continue
        # Looked up once: the cached copy decides whether to fetch, stands in if fetching
        # again fails, and its hash tells whether fetched text needs embedding again.
        cached = pages.cached[url] = store.get_document(url)
        if usable(cached):
            pages.documents[url] = cached
            events.append(pages.set(url, FetchStatus.CACHED, title=cached.title))
        elif config.offline:
            events.append(pages.set(url, FetchStatus.ERROR, "not in the local index (offline)"))
        else:
            to_fetch.append(url)
    return to_fetch, events


def fetch(urls: list[str], policy, workers: Workers, run: Run) -> list[Page]:
    """Fetch ``urls`` concurrently, ``fetch_concurrency`` at a time, each URL checked against
    ``policy`` first; a failure is the page's status, never an exception."""
    if not urls:
        return []

    async def everything() -> list[Page]:
        limit = asyncio.Semaphore(run.config.fetch_concurrency)
        with recording(run.requests):  # on the loop's thread: the tasks below inherit it
            return list(await asyncio.gather(*(_fetch_one(url, policy, workers, run.config, limit) for url in urls)))

    return workers.run(everything(), run.cancel)


async def _fetch_one(url: str, policy, workers: Workers, config, limit: asyncio.Semaphore) -> Page:
    async with limit:
        started = time.perf_counter()
        # The policy's DNS lookup and the fetcher share one deadline: a fetcher that hangs, or
        # a resolver that does, costs this page, never the question. A second beyond
        # fetch_timeout lets a fetcher that keeps the limit itself report its own status.
        deadline = config.fetch_timeout + 1.0
        try:
            result = await asyncio.wait_for(_checked_page(url, policy, workers, config), deadline)
        except asyncio.TimeoutError:
            result = Page(url=url, status=FetchStatus.TIMEOUT, reason=f"no page within {config.fetch_timeout:g} s")
        except Exception as error:  # a fetcher bug is this URL's problem only
            result = Page(url=url, status=FetchStatus.ERROR, reason=f"fetcher failed: {error}")
        if result is None:
            result = Page(url=url, status=FetchStatus.NO_FETCHER, reason="no plugin fetches this URL")
        elif not isinstance(result, Page):
            result = Page(url=url, status=FetchStatus.ERROR,
                          reason=f"the fetcher returned {type(result).__name__}, not a Page")
        result.url = url
        result.seconds = result.seconds or round(time.perf_counter() - started, 4)
        return result


async def _checked_page(url: str, policy, workers: Workers, config):
    refused = await asyncio.wrap_future(workers.lookup_pool.submit(policy.check, url))  # DNS blocks
    if refused:
        return Page(url=url, status=FetchStatus.BLOCKED, reason=refused)
    return await _first_page(url, config, workers)


async def _first_page(url: str, config, workers: Workers):
    return await first_result(pm.hook.fetch_page, {"url": url, "config": config}, workers)


async def first_result(hook, arguments: dict, workers: Workers):
    """A firstresult fetch hook (``fetch_page``, ``fetch_image``) whose implementations may be
    async: each is asked in pluggy's order and its awaitable awaited, so an async fetcher that
    resolves to None declines the URL like a plain one. A blocking implementation runs on the
    fetch pool."""
    for implementation in reversed(hook.get_hookimpls()):
        if implementation.hookwrapper or implementation.wrapper:
            continue  # wrappers cannot wrap an awaited call; documented in the hook reference
        call_arguments = [arguments[name] for name in implementation.argnames]
        if inspect.iscoroutinefunction(implementation.function):
            result = await implementation.function(*call_arguments)
        else:
            result = await asyncio.wrap_future(workers.fetch_pool.submit(carry(implementation.function),
                                                                         *call_arguments))
            if inspect.isawaitable(result):
                result = await result
        if result is not None:
            return result
    return None


def extract(page: Page, config, given: bool = False) -> tuple[Document | None, str]:
    """The page's document, or None and the reason it has none. One whose images are to be
    read may be short for now: ``enough_words`` decides once their text is in."""
    try:
        document = pm.hook.extract_document(page=page, config=config)
    except Exception as error:  # a page that breaks the extractor is skipped, not fatal
        return None, f"extractor failed: {type(error).__name__}: {error}"
    if document is not None and not isinstance(document, Document):
        return None, f"the extractor returned {type(document).__name__}, not a Document"
    if document is not None and page_images.wanted(document, given, config):
        return document, ""
    if document is None or not document.text.strip():
        return None, "no main text found on the page"
    return document, enough_words(document, config, given)


def enough_words(document: Document, config, given: bool = False) -> str:
    """Why the document is too short to be content, or "". A page the user asks about
    (``given``) is read however short it is."""
    if not document.text.strip():
        return "no main text found on the page"
    if not given and len(document.text.split()) < config.min_words:  # menus and cookie notes are not content
        return f"main text has fewer than {config.min_words} words"
    return ""


def read(urls: list[str], given: list[Page], store, policy, workers: Workers, run: Run,
         refresh: bool = False, pending=None) -> Iterator[Event]:
    """Documents for ``urls`` (plus ``given``, pages the caller already has, such as the
    browser's current page): from the page cache when fresh, else fetched and extracted.
    New text is chunked into ``Pages.new`` for the caller to store when it suits it. Yields
    events; returns ``Pages``."""
    pages = Pages()
    given_urls = {page.url for page in given}
    to_fetch, events = lookup([u for u in urls if u not in given_urls], store, run, pages, refresh, pending)
    yield from events

    yield run.start("fetch")
    fetched = list(given) + fetch(to_fetch, policy, workers, run)
    for page in fetched:
        if page.ok:
            continue
        if pages.cached.get(page.url) is not None:
            pages.documents[page.url] = pages.cached[page.url]
            yield pages.set(page.url, FetchStatus.CACHED,
                            f"older copy; fetching again: {page.status} {page.reason}".strip(), seconds=page.seconds)
        else:
            yield pages.set(page.url, page.status, page.reason, seconds=page.seconds)
    yield run.end("fetch", pages=len(to_fetch))

    yield run.start("extract")
    now, extracted = time.time(), []
    sizes = {page.url: len(page.html) for page in fetched if page.ok}
    for page in fetched:
        if not page.ok:
            continue
        run.check()
        document, reason = extract(page, run.config, page.url in given_urls)
        if document is None or reason:
            yield pages.set(page.url, FetchStatus.NO_CONTENT, reason)
            continue
        document.url = page.url  # the URL asked for stays the key, whatever redirects said
        document.fetched_at = now
        extracted.append(document)
    yield run.end("extract", documents=len(extracted))

    with_images = [d for d in extracted if page_images.wanted(d, d.url in given_urls, run.config)]
    images: dict[str, list] = {}
    if with_images:
        yield run.start("images")
        images = page_images.read_images(with_images, policy, workers, run)
        yield run.end("images", images=sum(r.status == FetchStatus.OK for read in images.values() for r in read))
    kept = []
    for document in extracted:
        reason = enough_words(document, run.config, document.url in given_urls)
        if reason:
            yield pages.set(document.url, FetchStatus.NO_CONTENT, reason, **_images_detail(images, document.url))
            continue
        document.content_hash = hashlib.sha256(document.text.encode("utf-8")).hexdigest()
        kept.append(document)
    extracted = kept

    changed = []
    for document in extracted:
        cached = pages.cached[document.url] if document.url in pages.cached else store.get_document(document.url)
        if cached is not None and cached.content_hash == document.content_hash:
            store.touch(document.url, now)  # same text: no need to embed it again
        else:
            changed.append(document)
        pages.documents[document.url] = document
        yield pages.set(document.url, FetchStatus.OK, title=document.title, chars=len(document.text),
                        size=sizes.get(document.url, 0), **_images_detail(images, document.url))
    pages.new += chunk(changed, run.config)
    return pages


def _images_detail(images: dict, url: str) -> dict:
    return {"images": [r.to_dict() for r in images[url]]} if images.get(url) else {}


def chunk(documents: list[Document], config) -> list[tuple[Document, list[Passage]]]:
    chunked = []
    for document in documents:
        passages = pm.hook.chunk_document(document=document, config=config)
        if passages is None:
            raise PluginError("no plugin chunks documents")
        for passage in passages:
            if document.text[passage.start:passage.end] != passage.text:
                raise PluginError(f"chunker produced a passage whose offsets do not match the text of {document.url}")
            passage.title = passage.title or document.title
        chunked.append((document, passages))
    return chunked


def store_passages(chunked: list[tuple[Document, list[Passage]]], embed, store, run: Run) -> None:
    """Embed every new passage in one call (batching is where the embedder is fast) and store
    each page with its passages."""
    run.check()
    vectors = embed([p.text for _, passages in chunked for p in passages], "passage")
    offset = 0
    for document, passages in chunked:
        store.add_document(document, passages, vectors[offset: offset + len(passages)])
        offset += len(passages)
