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
from urllib.parse import urljoin, urlsplit

from localsearch.outgoing import current
from localsearch.types import FetchStatus, Page
from localsearch.urlpolicy import UrlPolicy
from localsearch.workers import loop_thread

# Where a user's Chromium usually is: Debian's binary itself first (its /usr/bin wrapper adds
# flags and prints shell errors), then the usual program names on PATH.
CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
              "microsoft-edge", "brave-browser")
REFUSED_TYPES = {"image", "media", "font", "websocket", "manifest", "other"}
RETRY_SECONDS = 60.0  # a browser that would not start is tried again after this long, not for every page
LAUNCH_ARGUMENTS = [
    # Every name unresolvable, IP literals included: a request that escapes interception
    # (a WebSocket, a shared worker's) reaches nothing.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    # WebRTC sends UDP past both the interception and the resolver (a STUN server given as an
    # address): only through a proxy, and there is none.
    "--webrtc-ip-handling-policy=disable_non_proxied_udp", "--force-webrtc-ip-handling-policy",
    "--disable-background-networking", "--disable-component-update", "--no-first-run", "--mute-audio",
]
SETTLE_SECONDS = 2.0  # after the DOM is ready, how long scripts may keep loading (within the page's limit)
FORWARDED_HEADERS = ("accept", "accept-language", "content-type", "referer")
# Dialogs answered in the page, at once, as a dismissal would (no, nothing): a dialog answered
# through Playwright costs a round trip while the page's script waits, and a page that opens them
# in a loop never finished in its time. The dialog handler still dismisses any that get through
# (one from another frame's copy of the functions, "leave this page?").
QUIET_DIALOGS = """(() => {
  const quiet = { alert() {}, confirm() { return false; }, prompt() { return null; }, print() {} };
  for (const [name, answer] of Object.entries(quiet)) {
    try { Object.defineProperty(window, name, { value: answer, writable: false, configurable: false }); } catch {}
  }
})();"""


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
        self._playwright = None
        self._failed: tuple[str, float, str] | None = None  # (executable, when, why) of a launch that failed
        self._tasks: set[asyncio.Task] = set()  # clean-ups under way (asyncio keeps only weak references)
        self.started_seconds = 0.0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = loop_thread("localsearch-chromium")
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

    def later(self, coroutine) -> None:
        """Run ``coroutine`` in the background, kept until it is done."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ensure(self, config):
        executable = find_browser(config.get("browser_path", ""))
        if self._browser is not None and self._browser.is_connected() and executable == self._executable:
            return self._browser
        if self._failed and self._failed[0] == executable and time.monotonic() - self._failed[1] < RETRY_SECONDS:
            raise BrowserUnavailable(self._failed[2])  # not again for every page
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._launch(executable, config))
        return await asyncio.shield(self._starting)

    async def _launch(self, executable: str, config):
        from playwright.async_api import async_playwright

        started = time.perf_counter()
        await self._stop()  # a browser that died, or another browser_path: its driver goes too
        try:
            self._playwright = await async_playwright().start()
            browser = await self._playwright.chromium.launch(executable_path=executable, headless=True,
                                                             args=LAUNCH_ARGUMENTS)
        except Exception as error:
            await self._stop()
            why = f"the browser {executable} did not start: {(str(error).strip().splitlines() or ['?'])[0]}"
            self._failed = (executable, time.monotonic(), why)
            raise BrowserUnavailable(why) from None
        self._failed = None
        self._browser, self._executable = browser, executable
        self._pages = asyncio.Semaphore(max(1, int(config.get("browser_pages", 4))))
        self.started_seconds = round(time.perf_counter() - started, 3)
        return browser

    async def _stop(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        for closing in (browser.close() if browser else None, playwright.stop() if playwright else None):
            if closing is not None:
                try:
                    await closing
                except Exception:
                    pass

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
        gate = _Gate(url, config, log, await _subresource_policy(url, config))
        try:
            await context.route("**/*", gate.handle)
            await context.add_init_script(QUIET_DIALOGS)
            page = await context.new_page()
            context.on("page", lambda other: self.later(other.close()) if other is not page else None)
            page.on("dialog", lambda dialog: self.later(dialog.dismiss()))
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
            try:
                html = await page.content()
                title = await page.title()
            except PlaywrightError as error:  # the page navigated away or its frame went
                return Page(url, FetchStatus.ERROR, reason=f"the page could not be read in the browser: "
                                                           f"{_first_line(error)}")
        finally:
            # Not awaited: a page hung in a script must not hold up the answer. The gate's client
            # closes after the context, when no request of the page is left in flight.
            async def close() -> None:
                try:
                    await context.close()
                finally:
                    await gate.close()

            self.later(close())
        limit = config.get("max_page_bytes", 5_000_000)
        if len(html.encode("utf-8", "surrogatepass")) > limit:
            return Page(url, FetchStatus.TOO_LARGE, reason=f"the rendered page is over the {limit:,}-byte cap")
        return Page(url, FetchStatus.OK, final_url=gate.final_url or page.url, html=html, content_type="text/html",
                    http_status=response.status if response is not None else None, title=title,
                    reason=f"rendered in the browser ({gate.summary()})")


async def _subresource_policy(url: str, config) -> UrlPolicy:
    """The policy for what a page loads. The user's ``allowed_hosts`` let search results point
    at those hosts; a public page's scripts must not reach them, so they hold only for a page
    that is itself on one."""
    policy = UrlPolicy.from_config(config)
    if not policy.entries:
        return policy
    bare = UrlPolicy()
    return policy if await asyncio.to_thread(bare.check, url) else bare


class _Gate:
    """Every request of one page: refused, or fetched by the guarded client and handed to the
    browser. The page's own redirects are followed here, hop by hop under the policy (the
    browser would follow a redirect it is handed on its own, past this gate); a subresource
    follows only redirects within its own origin."""

    def __init__(self, url: str, config, log=None, subresources: UrlPolicy | None = None):
        self.url, self.config, self.log = url, config, log
        self.policy = UrlPolicy.from_config(config)
        self.subresources = subresources or self.policy
        self.fetched = self.refused = 0
        self.bytes = 0
        self.blocked: dict[str, tuple[str, str]] = {}  # the page's own URLs refused or failed: status, why
        self.final_url = ""
        self._client = None

    async def close(self) -> None:
        for client in (self._client or {}).values():
            await client.aclose()

    def summary(self) -> str:
        return f"{self.fetched} request{'s' if self.fetched != 1 else ''}, {self.refused} refused"

    def failure(self, url: str) -> Page | None:
        """The page's own failure, if its document (or a redirect of it) was refused."""
        for target, (status, reason) in self.blocked.items():
            return Page(url, status, final_url=target,
                        reason=reason if target == url else f"redirected to {target}: {reason}")
        return None

    def _note(self, kind: str, url: str, refused: str = "", **details) -> dict | None:
        return self.log.add(kind, url, refused=refused, **details) if self.log is not None else None

    async def _refuse(self, route, url: str, why: str, error: str = "blockedbyclient") -> None:
        self.refused += 1
        self._note("subresource", url, why)
        await route.abort(error)

    async def handle(self, route) -> None:
        request = route.request
        if request.resource_type in REFUSED_TYPES:
            return await self._refuse(route, request.url, f"{request.resource_type}s are not loaded")
        if not request.url.lower().startswith(("http://", "https://")):
            return await self._refuse(route, request.url[:200], "only http and https are loaded")
        try:
            main_document = request.is_navigation_request() and request.frame.parent_frame is None
        except Exception:  # a navigation before its frame exists: a pop-up opening
            return await self._refuse(route, request.url, "pop-ups are not opened")
        try:
            response = await self._fetch(request, main_document)
        except _Refused as error:
            self.refused += 1
            if main_document:
                self.blocked[error.url or request.url] = (error.status, str(error))
            return await route.abort("blockedbyclient")
        except Exception as error:  # the network failed it: the browser sees a failed request
            self.refused += 1
            if main_document:  # and the page says why, not the browser's net::ERR_FAILED
                self.blocked[request.url] = (_network_status(error), _first_line(error))
            return await route.abort("failed")
        self.fetched += 1
        await route.fulfill(**response)

    async def _fetch(self, request, main_document: bool) -> dict:
        """One request, with the redirects it may follow, each hop under the policy."""
        import httpx

        from .http_fetch import ACCEPT_ENCODING, _Blocked, _decompress, _guarded_classes, _ssl_context, _TooLarge, \
            unreadable_encoding

        policy = self.policy if main_document else self.subresources
        client = await self._client_for(policy, httpx, _guarded_classes, _ssl_context)
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS}
        headers["user-agent"] = self.config.get("user_agent", "")
        headers["accept-encoding"] = ACCEPT_ENCODING  # what _decompress undoes, within the cap
        limit = self.config.get("max_page_bytes", 5_000_000)
        kind = "page" if main_document else "subresource"
        url, method, content = request.url, request.method, request.post_data_buffer
        for _ in range(int(self.config.get("max_redirects", 5)) + 1):
            reason = policy.check_syntax(url) or (
                "" if url.lower().startswith(("http://", "https://")) else "a redirect leads only to http and https")
            entry = self._note(kind, url, reason, redirected_from=request.url if url != request.url else None)
            if reason:
                raise _Refused(reason, url)
            try:
                async with client.stream(method, url, headers=headers, content=content) as response:
                    if response.is_redirect and "location" in response.headers:
                        target = urljoin(url, response.headers["location"])
                        if not main_document and _origin(target) != _origin(request.url):
                            # Followed here and handed back as the first URL, a cross-origin answer
                            # would pass as same-origin: not followed at all.
                            self._note(kind, target, "a subresource's redirect to another origin is not followed")
                            raise _Refused("redirected to another origin", target)
                        url = target
                        if response.status_code in (301, 302, 303):
                            method, content = "GET", None
                        continue
                    encoding = response.headers.get("content-encoding", "")
                    unreadable = unreadable_encoding(encoding)
                    if unreadable:  # handed on, its bytes would be rendered as they are
                        raise _Refused(unreadable, url, FetchStatus.ERROR)
                    body = bytearray()
                    # Raw, and unpacked here within the cap: httpx would unpack a whole chunk of a
                    # bomb at once (a 64 KB chunk of gzip can hold 64 MB).
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if len(body) > limit or self.bytes + len(body) > 4 * limit:
                            raise _Refused(f"over the {limit:,}-byte cap", url, FetchStatus.TOO_LARGE)
                    if encoding.strip():
                        try:
                            body = _decompress(bytes(body), encoding, limit)
                        except _TooLarge as error:
                            raise _Refused(str(error), url, FetchStatus.TOO_LARGE) from None
                        except (ValueError, OSError) as error:
                            raise _Refused(str(error), url, FetchStatus.ERROR) from None
                        if self.bytes + len(body) > 4 * limit:
                            raise _Refused(f"over the {limit:,}-byte cap", url, FetchStatus.TOO_LARGE)
            except _Blocked as error:  # refused where the connection was to be made: it never went out
                if entry is not None:
                    entry["refused"] = str(error)
                raise _Refused(str(error), url) from None
            self.bytes += len(body)
            kept = {k: v for k, v in response.headers.items()
                    if k.lower() not in ("content-encoding", "content-length", "transfer-encoding", "set-cookie")}
            if not any(k.lower() == "access-control-allow-origin" for k in kept):
                # Playwright adds one matching the page when a fulfilled answer has none, which
                # would let the page's scripts read any site: name the answer's own origin.
                kept["access-control-allow-origin"] = _origin(url)
            if main_document:
                self.final_url = url
                if url != request.url and "html" in kept.get("content-type", "text/html"):
                    # Shown at its first address: its own links resolve from where it really is.
                    body = re.sub(rb"(?i)<head(?=[\s>])[^>]*>",
                                  lambda m: m.group(0) + f'<base href="{html.escape(url)}">'.encode(),
                                  bytes(body), count=1)
            return {"status": response.status_code, "headers": kept, "body": bytes(body)}
        raise _Refused(f"more than {self.config.get('max_redirects', 5)} redirects", url, FetchStatus.REDIRECT_LOOP)

    async def _client_for(self, policy, httpx, guarded_classes, ssl_context):
        """One guarded client per policy (the page's own, and its subresources')."""
        if self._client is None:
            self._client = {}
        if id(policy) not in self._client:
            self._client[id(policy)] = httpx.AsyncClient(
                follow_redirects=False, timeout=self.config.fetch_timeout, verify=ssl_context(),
                transport=guarded_classes()[1](policy), trust_env=False)
        return self._client[id(policy)]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class _Refused(Exception):
    def __init__(self, reason: str, url: str = "", status: str = FetchStatus.BLOCKED):
        super().__init__(reason)
        self.url, self.status = url, status


def _network_status(error: Exception) -> str:
    import httpx

    return FetchStatus.TIMEOUT if isinstance(error, httpx.TimeoutException) else FetchStatus.ERROR


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


BROWSER = Chromium()
