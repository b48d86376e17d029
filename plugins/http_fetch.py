"""Fetcher: async HTTP with httpx (and ``file://`` URLs for local HTML files).

Every outcome is a status on the Page, never an exception: ok, timeout, too large, not HTML,
HTTP error, redirect loop, error.
"""

from __future__ import annotations

import asyncio
import codecs
import functools
import re
import time
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from localsearch import hookimpl
from localsearch.types import FetchStatus, Page

HTML_TYPES = ("text/html", "application/xhtml+xml")
# Magic numbers of formats that arrive labelled text/html more often than one would hope.
BINARY_MAGIC = (b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b", b"RIFF", b"\x00\x00\x01\x00")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


@hookimpl(trylast=True)
def register_settings(register):
    register("fetch_timeout", 10.0, "seconds one page may take to download")
    register("max_page_bytes", 5_000_000, "larger pages are skipped as 'too large'")
    register("max_redirects", 5, "redirects followed before a page is given up")
    register("user_agent", "Mozilla/5.0 (X11; Linux x86_64) localsearch/0.1", "User-Agent header of page fetches")


@hookimpl(trylast=True)
def fetch_page(url, config):
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return _fetch_http(url, config)
    if scheme == "file":
        return _read_file(url, config)
    return None


def decode_html(body: bytes, header_charset: str | None) -> tuple[str, str]:
    """Decode HTML bytes: the header's charset, else a <meta> charset, else UTF-8, else
    windows-1252. Returns (text, note); undecodable bytes become U+FFFD and are noted."""
    candidates = []
    if header_charset:
        candidates.append(header_charset)
    meta = _META_CHARSET.search(body[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates.insert(0, "utf-16")
    for i, name in enumerate(candidates):
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            continue
        # What browsers do (WHATWG): latin-1 labels mean windows-1252, and a UTF-16 label in
        # a <meta> of a page without a byte-order mark means UTF-8.
        if codec in ("latin-1", "iso8859-1", "ascii"):
            codec = "cp1252"
        elif codec.startswith(("utf-16", "utf-32")) and not body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            codec = "utf-8"
        try:
            return body.decode(codec), ""
        except UnicodeDecodeError:
            return body.decode(codec, errors="replace"), f"invalid {codec} bytes replaced"
        except LookupError:  # a bytes-to-bytes codec such as base64 is no charset
            continue
    try:
        return body.decode("utf-8"), ""
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace"), "no charset declared; read as windows-1252"


def _looks_binary(head: bytes) -> bool:
    return head.startswith(BINARY_MAGIC) or b"\x00" in head


def _content(url, body: bytes, content_type: str, config, http_status=None, final_url="") -> Page:
    """Check what arrived and decode it into a Page."""
    mime, _, params = content_type.partition(";")
    mime = mime.strip().lower()
    charset = None
    match = re.search(r"charset\s*=\s*[\"']?([^\"';\s]+)", params, re.I)
    if match:
        charset = match.group(1)
    if mime and mime not in HTML_TYPES:
        return Page(url, FetchStatus.NOT_HTML, final_url=final_url, content_type=mime, http_status=http_status,
                    reason=f"content type {mime}")
    if _looks_binary(body[:1024]) and not body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Page(url, FetchStatus.NOT_HTML, final_url=final_url, content_type=mime, http_status=http_status,
                    reason="binary content labelled as HTML")
    html, note = decode_html(body, charset)
    return Page(url, FetchStatus.OK, final_url=final_url or url, html=html, content_type=mime or "text/html",
                http_status=http_status, reason=note)


@functools.cache
def _ssl_context():
    # Building an SSL context costs ~40 ms of CPU; one per page made 20 concurrent fetches
    # CPU-bound on two cores. One shared context serves every client.
    import httpx

    return httpx.create_ssl_context()


class _TooLarge(Exception):
    pass


async def _fetch_http(url, config) -> Page:
    import httpx

    started = time.perf_counter()
    try:
        page = await asyncio.wait_for(_follow(url, config), timeout=config.fetch_timeout)
    except (asyncio.TimeoutError, TimeoutError, httpx.TimeoutException):
        page = Page(url, FetchStatus.TIMEOUT, reason=f"no complete answer within {config.fetch_timeout:g} s")
    except _TooLarge as error:
        page = Page(url, FetchStatus.TOO_LARGE, reason=str(error))
    except Exception as error:  # DNS, refused connections, TLS, broken chunked encoding...
        reason = str(error) or type(error).__name__
        page = Page(url, FetchStatus.ERROR, reason=reason)
    page.seconds = round(time.perf_counter() - started, 4)
    return page


async def _follow(url, config) -> Page:
    import httpx

    limit = config.max_page_bytes
    headers = {"User-Agent": config.user_agent, "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
               "Accept-Encoding": "gzip, deflate"}
    seen = set()
    current = url
    async with httpx.AsyncClient(headers=headers, follow_redirects=False, timeout=config.fetch_timeout,
                                 verify=_ssl_context()) as client:
        for _ in range(config.max_redirects + 1):
            if current in seen:
                return Page(url, FetchStatus.REDIRECT_LOOP, final_url=current, reason=f"redirects back to {current}")
            seen.add(current)
            async with client.stream("GET", current) as response:
                if response.is_redirect and "location" in response.headers:
                    current = urljoin(current, response.headers["location"])
                    continue
                if response.status_code >= 400:
                    return Page(url, FetchStatus.HTTP_ERROR, final_url=current, http_status=response.status_code,
                                reason=f"HTTP {response.status_code} {response.reason_phrase}".strip())
                content_type = response.headers.get("content-type", "")
                if content_type and content_type.split(";")[0].strip().lower() not in HTML_TYPES:
                    return Page(url, FetchStatus.NOT_HTML, final_url=current, http_status=response.status_code,
                                content_type=content_type, reason=f"content type {content_type.split(';')[0]}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    return Page(url, FetchStatus.TOO_LARGE, final_url=current, http_status=response.status_code,
                                reason=f"{int(declared):,} bytes, over the {limit:,}-byte cap")
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > limit:  # no or wrong Content-Length: stop reading at the cap
                        return Page(url, FetchStatus.TOO_LARGE, final_url=current, http_status=response.status_code,
                                    reason=f"over the {limit:,}-byte cap")
                if response.headers.get("content-encoding"):
                    body = bytearray(_decompress(bytes(body), response.headers["content-encoding"], limit))
                return _content(url, bytes(body), content_type, config, response.status_code, current)
    return Page(url, FetchStatus.REDIRECT_LOOP, final_url=current,
                reason=f"more than {config.max_redirects} redirects")


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo Content-Encoding ourselves so the size cap also holds for what a small gzip unpacks to."""
    import zlib

    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        # deflate is meant to be zlib-wrapped, but some servers send it raw: try both.
        for wbits in ((31,) if "gzip" in encoding else (zlib.MAX_WBITS, -zlib.MAX_WBITS)):
            try:
                data = zlib.decompressobj(wbits).decompress(body, limit + 1)
            except zlib.error:
                continue
            if len(data) > limit:
                raise _TooLarge(f"unpacks to over the {limit:,}-byte cap")
            return data
        raise ValueError(f"body is not valid {encoding} data")
    if encoding == "identity":
        return body
    raise ValueError(f"unsupported content encoding {encoding}")


def _read_file(url, config) -> Page:
    path = Path(unquote(urlsplit(url).path))
    if not path.is_file():
        return Page(url, FetchStatus.HTTP_ERROR, reason="no such file")
    if path.stat().st_size > config.max_page_bytes:
        return Page(url, FetchStatus.TOO_LARGE, reason=f"over the {config.max_page_bytes:,}-byte cap")
    if path.suffix.lower() not in (".html", ".htm", ".xhtml"):
        return Page(url, FetchStatus.NOT_HTML, reason=f"not an .html file: {path.name}")
    return _content(url, path.read_bytes(), "text/html", config)
