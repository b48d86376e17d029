"""Fetcher: pages read through a real browser (Chromium, driven by Playwright), for pages whose
text is built by JavaScript. ``browser_fetch``: ``auto`` (the default) reads a page the plain
HTTP fetch got too little text from, or that looks built by script, again in the browser;
``always`` reads every page there; ``never`` leaves every page to the HTTP fetcher.
``browser_domains`` are always read in the browser. The browser itself is ``chromium.py``: no
`playwright install`, a Chromium the user has.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from localsearch import hookimpl
from localsearch.types import Page

MODES = ("auto", "always", "never")
_SCRIPT = re.compile(r"<script\b", re.I)
_INVISIBLE = re.compile(r"(?is)<(script|style|noscript|template)\b.*?</\1\s*>|<!--.*?-->")
_TAG = re.compile(r"(?s)<[^>]+>")
_NEEDS_SCRIPT = re.compile(r"(?i)(enable|requires?|turn on)\s+javascript|javascript\s+(is\s+)?(required|disabled)")


@hookimpl
def register_settings(register):
    register("browser_fetch", "auto", "read pages in a browser (Chromium): auto (pages that look built by "
                                      "JavaScript, or whose plain fetch has too little text), always, never")
    register("browser_domains", [], "domains whose pages are always read in the browser (subdomains included)")
    register("browser_path", "", "the Chromium-family browser to run (empty: /usr/lib/chromium/chromium or "
                                 "chromium, google-chrome... on PATH)")
    register("browser_pages", 4, "pages the browser reads at once")


def _mode(config) -> str:
    mode = str(config.get("browser_fetch", "auto")).strip().lower()
    return mode if mode in MODES else "auto"


def _always_here(url: str, config) -> bool:
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in
               (str(d).lower().strip().lstrip(".").rstrip(".") for d in config.get("browser_domains", []) or []) if d)


def visible_words(html: str) -> int:
    return len(_TAG.sub(" ", _INVISIBLE.sub(" ", html)).split())


def looks_scripted(page: Page, config) -> str:
    """Why a page the HTTP fetcher read should be read in the browser too, or ""."""
    if not page.ok or not _SCRIPT.search(page.html):
        return ""
    words = visible_words(page.html)
    if words < 2 * config.get("min_words", 20):
        return f"its plain HTML has {words} words of text and scripts"
    if _NEEDS_SCRIPT.search(_TAG.sub(" ", page.html[:200_000])) and words < 300:
        return "it asks for JavaScript"
    return ""


@hookimpl  # before the HTTP fetcher (trylast), after any fetcher a third party adds
async def fetch_page(url, config):
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return None
    mode = _mode(config)
    if mode == "never":
        return None
    from .chromium import BROWSER
    from .http_fetch import _fetch_http

    if mode == "always" or _always_here(url, config):
        return await BROWSER.read(url, config)
    started = time.monotonic()
    plain = await _fetch_http(url, config)
    why = looks_scripted(plain, config)
    if not why:
        return plain
    # One page, one time limit: the browser gets what the plain fetch left of it.
    left = config.fetch_timeout - (time.monotonic() - started) - 0.5
    if left < 1.0:
        plain.reason = "; ".join(filter(None, [plain.reason, f"looks built by script ({why}), but no time was "
                                                             f"left to read it in the browser"]))
        return plain
    try:
        rendered = await BROWSER.read(url, config.replace(fetch_timeout=left))
    except Exception as error:  # whatever the browser does, the page read plainly stands
        rendered = Page(url, "error", reason=f"the browser failed: {type(error).__name__}: {error}")
    if rendered.ok and visible_words(rendered.html) > visible_words(plain.html):
        rendered.reason = f"{rendered.reason}; read in the browser because {why}"
        return rendered
    # The plain page stands, with what the browser could not add.
    note = rendered.reason if not rendered.ok else "the browser found no more text"
    plain.reason = "; ".join(filter(None, [plain.reason, f"looks built by script ({why}), but {note}"]))
    return plain
