"""One headless Chromium per process, driven by Playwright on a thread of its own, that renders
pages built by JavaScript.

The browser never touches the network itself: it starts with every host name unresolvable, and
each request a page makes (the page, its redirects, scripts, styles, XHR) is intercepted and
fetched by our own guarded HTTP client, under the same URL policy and connection checks as the
HTTP fetcher, one hop at a time. Images, media, fonts, downloads, pop-ups, dialogs, service
workers and WebSockets are refused. Each page gets a fresh context (no cookies shared), a time
limit and a size limit; ``browser_pages`` pages are read at once.
"""

from __future__ import annotations

import asyncio
import html
import re
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import urljoin

from localsearch.outgoing import current
from localsearch.types import FetchStatus, Page
from localsearch.urlpolicy import UrlPolicy

# Where a user's Chromium usually is: Debian's binary itself first (its /usr/bin wrapper adds
# flags and prints shell errors), then the usual program names on PATH.
CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
              "microsoft-edge", "brave-browser")
REFUSED_TYPES = {"image", "media", "font", "websocket", "manifest", "other"}
SETTLE_SECONDS = 2.0  # after the DOM is ready, how long scripts may keep loading (within the page's limit)
FORWARDED_HEADERS = ("accept", "accept-language", "content-type", "referer")


class BrowserUnavailable(Exception):
    """No browser to start, or it would not start: the reason says which and what to set."""


def find_browser(configured: str = "") -> str:
    """The browser to run: ``browser_path`` if set, else the first of CANDIDATES found."""
    if configured:
        path = shutil.which(configured) or configured
        if not Path(path).is_file():
            raise BrowserUnavailable(f"browser_path {configured!r} is not a program")
        return path
    for candidate in CANDIDATES:
        found = candidate if Path(candidate).is_file() else shutil.which(candidate)
        if found:
            return found
    raise BrowserUnavailable("no Chromium found (looked for " + ", ".join(CANDIDATES) +
                             "); install one or set browser_path")


class Chromium:
    """The process's browser: started on first use on its own event loop, then reused."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._browser = None
        self._executable = ""
        self._starting: asyncio.Future | None = None
        self._pages: asyncio.Semaphore | None = None
        self.started_seconds = 0.0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                threading.Thread(target=run, name="localsearch-chromium", daemon=True).start()
                ready.wait()
                self._loop = loop
            return self._loop

    async def read(self, url: str, config) -> Page:
        """Render ``url`` (on any event loop): a Page with the HTML as the scripts left it."""
        # The browser's loop has a context of its own: the question's request list goes along.
        future = asyncio.run_coroutine_threadsafe(self._read(url, config, current()), self.loop)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    async def _ensure(self, config):
        executable = find_browser(config.get("browser_path", ""))
        if self._browser is not None and self._browser.is_connected() and executable == self._executable:
            return self._browser
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._launch(executable, config))
        return await asyncio.shield(self._starting)

    async def _launch(self, executable: str, config):
        from playwright.async_api import async_playwright

        started = time.perf_counter()
        try:
            playwright = await async_playwright().start()
            browser = await playwright.chromium.launch(
                executable_path=executable, headless=True,
                # Every name unresolvable: a request that escaped interception reaches nothing.
                args=["--host-resolver-rules=MAP * ~NOTFOUND", "--disable-background-networking",
                      "--disable-component-update", "--no-first-run", "--mute-audio"])
        except Exception as error:
            raise BrowserUnavailable(f"the browser {executable} did not start: {str(error).splitlines()[0]}") from None
        self._browser, self._executable = browser, executable
        self._pages = asyncio.Semaphore(max(1, int(config.get("browser_pages", 4))))
        self.started_seconds = round(time.perf_counter() - started, 3)
        return browser

    async def _read(self, url: str, config, log=None) -> Page:
        started = time.perf_counter()
        try:
            browser = await self._ensure(config)
        except BrowserUnavailable as error:
            return Page(url, FetchStatus.ERROR, reason=str(error))
        async with self._pages:
            remaining = config.fetch_timeout - (time.perf_counter() - started)
            try:
                return await asyncio.wait_for(self._render(browser, url, config, log), max(0.5, remaining))
            except (asyncio.TimeoutError, TimeoutError):
                return Page(url, FetchStatus.TIMEOUT, reason=f"the page did not finish within {config.fetch_timeout:g} s "
                                                             f"in the browser")

    async def _render(self, browser, url: str, config, log) -> Page:
        from playwright.async_api import Error as PlaywrightError

        context = await browser.new_context(accept_downloads=False, service_workers="block",
                                            user_agent=config.get("user_agent") or None, java_script_enabled=True)
        gate = _Gate(url, config, log)
        try:
            await context.route("**/*", gate.handle)
            page = await context.new_page()
            context.on("page", lambda other: asyncio.ensure_future(other.close()) if other is not page else None)
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.dismiss()))
            try:
                response = await page.goto(url, wait_until="domcontentloaded",
                                           timeout=config.fetch_timeout * 1000)
            except PlaywrightError as error:
                return gate.failure(url) or Page(url, FetchStatus.ERROR, reason=_first_line(error))
            if gate.failure(url):
                return gate.failure(url)
            if response is not None and response.status >= 400:
                return Page(url, FetchStatus.HTTP_ERROR, final_url=page.url, http_status=response.status,
                            reason=f"HTTP {response.status}")
            try:  # scripts that fetch their content after the DOM is ready
                await page.wait_for_load_state("networkidle", timeout=SETTLE_SECONDS * 1000)
            except PlaywrightError:
                pass  # still busy: read what is there
            html = await page.content()
            title = await page.title()
        finally:
            # Not awaited: a page hung in a script must not hold up the answer.
            asyncio.ensure_future(context.close())
            asyncio.ensure_future(gate.close())
        limit = config.get("max_page_bytes", 5_000_000)
        if len(html.encode("utf-8", "surrogatepass")) > limit:
            return Page(url, FetchStatus.TOO_LARGE, reason=f"the rendered page is over the {limit:,}-byte cap")
        return Page(url, FetchStatus.OK, final_url=page.url, html=html, content_type="text/html",
                    http_status=response.status if response is not None else None, title=title,
                    reason=f"rendered in the browser ({gate.summary()})")


class _Gate:
    """Every request of one page: refused, or fetched by the guarded client and handed to the
    browser. Redirects are handed back as they are, so each hop comes through here again."""

    def __init__(self, url: str, config, log=None):
        self.url, self.config, self.log = url, config, log
        self.policy = UrlPolicy.from_config(config)
        self.fetched = self.refused = 0
        self.bytes = 0
        self.blocked: dict[str, tuple[str, str]] = {}  # the page's own URLs refused: status, why
        self._client = None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def summary(self) -> str:
        return f"{self.fetched} request{'s' if self.fetched != 1 else ''}, {self.refused} refused"

    def failure(self, url: str) -> Page | None:
        """The page's own failure, if its document (or a redirect of it) was refused."""
        for target, (status, reason) in self.blocked.items():
            return Page(url, status, final_url=target,
                        reason=reason if target == url else f"redirected to {target}: {reason}")
        return None

    async def handle(self, route) -> None:
        request = route.request
        if request.resource_type in REFUSED_TYPES or not request.url.lower().startswith(("http://", "https://")):
            self.refused += 1
            return await route.abort("blockedbyclient")
        try:
            main_document = request.is_navigation_request() and request.frame.parent_frame is None
        except Exception:  # a navigation before its frame exists: a pop-up opening
            self.refused += 1
            return await route.abort("blockedbyclient")
        try:
            response = await self._fetch(request, main_document)
        except _Refused as error:
            self.refused += 1
            if main_document:
                self.blocked[error.url or request.url] = (error.status, str(error))
            return await route.abort("blockedbyclient")
        except Exception:  # the network failed it: the browser sees a failed request
            self.refused += 1
            return await route.abort("failed")
        self.fetched += 1
        await route.fulfill(**response)

    async def _fetch(self, request, main_document: bool) -> dict:
        """One request, its redirects followed here, each hop under the policy (the browser
        would follow a redirect on its own, past this gate)."""
        import httpx

        from .http_fetch import _Blocked, _guarded_classes, _ssl_context

        if self._client is None:
            transport = _guarded_classes()[1](self.policy)
            self._client = httpx.AsyncClient(follow_redirects=False, timeout=self.config.fetch_timeout,
                                             verify=_ssl_context(), transport=transport, trust_env=False)
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS}
        headers["user-agent"] = self.config.get("user_agent", "")
        limit = self.config.get("max_page_bytes", 5_000_000)
        url, method, content = request.url, request.method, request.post_data_buffer
        for _ in range(int(self.config.get("max_redirects", 5)) + 1):
            reason = self.policy.check_syntax(url)
            if self.log is not None:  # what the page asked for, sent out or refused here
                self.log.add("page" if main_document else "subresource", url, refused=reason,
                             redirected_from=request.url if url != request.url else None)
            if reason:
                raise _Refused(reason, url)
            try:
                async with self._client.stream(method, url, headers=headers, content=content) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        if response.status_code in (301, 302, 303):
                            method, content = "GET", None
                        continue
                    body = bytearray()
                    async for chunk in response.aiter_bytes():  # decoded: the cap holds for what unpacks
                        body += chunk
                        if len(body) > limit or self.bytes + len(body) > 4 * limit:
                            raise _Refused(f"over the {limit:,}-byte cap", url, FetchStatus.TOO_LARGE)
            except _Blocked as error:
                raise _Refused(str(error), url) from None
            self.bytes += len(body)
            kept = {k: v for k, v in response.headers.items()
                    if k.lower() not in ("content-encoding", "content-length", "transfer-encoding", "set-cookie")}
            if main_document and url != request.url and "html" in kept.get("content-type", "text/html"):
                # The browser shows the page at its first address: its own links resolve from where it is.
                body = re.sub(rb"(?i)<head[^>]*>", lambda m: m.group(0) + f'<base href="{html.escape(url)}">'.encode(),
                              bytes(body), count=1)
            return {"status": response.status_code, "headers": kept, "body": bytes(body)}
        raise _Refused(f"more than {self.config.get('max_redirects', 5)} redirects", url, FetchStatus.REDIRECT_LOOP)


class _Refused(Exception):
    def __init__(self, reason: str, url: str = "", status: str = FetchStatus.BLOCKED):
        super().__init__(reason)
        self.url, self.status = url, status


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


BROWSER = Chromium()
