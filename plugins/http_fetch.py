"""Fetcher: async HTTP with httpx (and ``file://`` URLs for local HTML files).

Every outcome is a status on the Page, never an exception: ok, timeout, too large, not HTML,
HTTP error, redirect loop, blocked, error.

The URL policy (``localsearch.urlpolicy``, setting ``allowed_hosts``) holds for every hop: each
URL, the first and every redirect, is checked before it is requested (scheme, numeric and local
hosts), and every connection is checked where it is made: the host name is resolved once, every
address it resolves to must be allowed, and the socket connects to those checked addresses, so
a DNS answer that changes between a check and the connection (rebinding) cannot reach the
user's machine or network. A redirect never leads into ``file:``. Proxies from the environment
are not used for page fetches (``trust_env=False``): through a proxy the connection goes to the
proxy, which resolves and reaches the page's host itself, past every address check here, and a
proxy on the user's machine or network reaches exactly what the policy keeps out.
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
from localsearch.outgoing import record
from localsearch.types import FetchStatus, ImageFile, Page
from localsearch.urlpolicy import UrlPolicy

HTML_TYPES = ("text/html", "application/xhtml+xml")
# Magic numbers of formats that arrive labelled text/html more often than one would hope.
BINARY_MAGIC = (b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b", b"RIFF", b"\x00\x00\x01\x00")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# What _decompress undoes, and so all a fetch asks for (a server may send another anyway: brotli,
# zstd, which no module of the standard library reads).
ACCEPT_ENCODING = "gzip, deflate"
READABLE_ENCODINGS = ("gzip", "x-gzip", "deflate", "identity", "")


@hookimpl(trylast=True)
def register_settings(register):
    register("max_page_bytes", 5_000_000, "larger pages are skipped as 'too large'")
    register("max_redirects", 5, "redirects followed before a page is given up")
    register("user_agent", "Mozilla/5.0 (X11; Linux x86_64) localsearch/0.1", "User-Agent header of page fetches")


@hookimpl(trylast=True)
async def fetch_page(url, config):
    # Async through and through: it runs on the pipeline's event loop, so blocking fetchers
    # that hang (and hold the fetch threads) never hold up the pages this one reads.
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return await _fetch_http(url, config)
    if scheme == "file":
        return await asyncio.to_thread(_read_file, url, config)
    return None


@hookimpl(trylast=True)
async def fetch_image(url, config, limit):
    if urlsplit(url).scheme.lower() in ("http", "https"):
        return await _fetch_http(url, config, image_limit=limit)
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


class _Blocked(Exception):
    """The URL policy refused where a redirect leads (``url``) or the address a connection
    was about to be made to."""

    def __init__(self, reason: str, url: str = ""):
        super().__init__(reason)
        self.url = url


HAPPY_EYEBALLS_DELAY = 0.25  # seconds before the next address is tried too (RFC 8305), as anyio does


@functools.cache
def _guarded_classes():
    """The network backend that checks every connection against the URL policy, and the httpx
    transport that uses it; built on first use so that importing this plugin stays cheap.

    httpcore takes a custom network backend publicly (``AsyncConnectionPool(network_backend=
    ...)``), but httpx's ``AsyncHTTPTransport`` does not pass one through; the transport below
    therefore replaces the pool it builds, ``AsyncHTTPTransport._pool`` (httpx 0.27-0.28, with
    httpcore 1.0), keeping httpx's request/response and exception mapping. If an httpx release
    moves the pool, ``guarded_transport`` returns None and the fetcher checks each hop with DNS
    instead (no protection against rebinding); tests/test_urlpolicy.py fails on that."""
    import ipaddress
    import socket

    import anyio
    import httpcore
    import httpx

    class GuardedBackend(httpcore.AsyncNetworkBackend):
        def __init__(self, policy: UrlPolicy):
            self.policy = policy
            self.inner = httpcore.AnyIOBackend()

        async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            try:
                with anyio.fail_after(timeout):  # resolving and connecting, together
                    addresses = await self._resolve(host, port)
                    reason = self.policy.check_addresses(host, port, addresses)
                    if reason:
                        raise _Blocked(reason)
                    return await self._connect(addresses, port, dict(
                        timeout=None, local_address=local_address, socket_options=socket_options))
            except TimeoutError:
                raise httpcore.ConnectTimeout(f"connecting to {host} timed out") from None

        async def _resolve(self, host, port) -> list[str]:
            try:
                return [str(ipaddress.ip_address(host.split("%", 1)[0]))]
            except ValueError:
                pass
            try:
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as error:  # idna's errors are UnicodeErrors
                raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
            v6 = [info[4][0] for info in infos if info[0] == socket.AF_INET6]
            v4 = [info[4][0] for info in infos if info[0] != socket.AF_INET6]
            ordered = [a for pair in zip(v6, v4) for a in pair] + v6[len(v4):] + v4[len(v6):]
            if not ordered:
                raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
            return list(dict.fromkeys(ordered))

        async def _connect(self, addresses, port, kwargs):
            """Connect to the first of ``addresses`` that answers, starting the next one after
            HAPPY_EYEBALLS_DELAY or as soon as the previous one fails."""
            if len(addresses) == 1:
                return await self.inner.connect_tcp(addresses[0], port, **kwargs)
            winner, errors = None, []

            async def attempt(address, done):
                nonlocal winner
                try:
                    stream = await self.inner.connect_tcp(address, port, **kwargs)
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                    errors.append(error)
                else:
                    if winner is None:
                        winner = stream
                        group.cancel_scope.cancel()
                    else:
                        await stream.aclose()
                finally:
                    done.set()

            async with anyio.create_task_group() as group:
                for address in addresses:
                    done = anyio.Event()
                    group.start_soon(attempt, address, done)
                    with anyio.move_on_after(HAPPY_EYEBALLS_DELAY):
                        await done.wait()
            if winner is None:
                raise errors[-1] if errors else httpcore.ConnectError(f"could not connect to port {port}")
            return winner

        async def connect_unix_socket(self, path, timeout=None, socket_options=None):
            raise _Blocked("page fetches do not use Unix sockets")

        async def sleep(self, seconds):
            await anyio.sleep(seconds)

    def guarded_transport(policy: UrlPolicy):
        transport = httpx.AsyncHTTPTransport(verify=_ssl_context(), trust_env=False)
        if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
            return None
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(), max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0,
            network_backend=GuardedBackend(policy))
        return transport

    return GuardedBackend, guarded_transport


async def _fetch_http(url, config, image_limit: int | None = None) -> Page | ImageFile:
    """A page, or with ``image_limit`` an image of at most that many bytes."""
    import httpx

    made = Page if image_limit is None else ImageFile
    started = time.perf_counter()
    try:
        page = await asyncio.wait_for(_follow(url, config, image_limit), timeout=config.fetch_timeout)
    except (asyncio.TimeoutError, TimeoutError, httpx.TimeoutException):
        page = made(url, FetchStatus.TIMEOUT, reason=f"no complete answer within {config.fetch_timeout:g} s")
    except _TooLarge as error:
        page = made(url, FetchStatus.TOO_LARGE, reason=str(error))
    except Exception as error:  # DNS, refused connections, TLS, broken chunked encoding...
        reason = str(error) or type(error).__name__
        page = made(url, FetchStatus.ERROR, reason=reason)
    page.seconds = round(time.perf_counter() - started, 4)
    return page


def _blocked(made, url, current, reason) -> Page | ImageFile:
    if current != url:
        reason = f"redirected to {current}: {reason}"
    return made(url, FetchStatus.BLOCKED, final_url=current, reason=reason)


async def _follow(url, config, image_limit: int | None = None) -> Page | ImageFile:
    import httpx

    # Pages and images take the same road (every hop checked); they differ in what they accept.
    made = Page if image_limit is None else ImageFile
    limit = config.max_page_bytes if image_limit is None else image_limit
    accept = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1" if image_limit is None else "image/*"
    headers = {"User-Agent": config.user_agent, "Accept": accept, "Accept-Encoding": ACCEPT_ENCODING}
    seen = set()
    current = url
    policy = UrlPolicy.from_config(config)
    transport = _guarded_classes()[1](policy)

    async def check_redirect(response):
        # Before httpx parses the Location, which it refuses for some forms (0177.0.0.1, data:)
        # with an error that would hide what the redirect tried.
        if response.has_redirect_location:
            target = urljoin(current, response.headers["location"])
            # Never into file: (which allowed_folders would otherwise let pass) or another scheme.
            reason = policy.check_syntax(target) or (
                "" if target.lower().startswith(("http://", "https://")) else "a redirect leads only to http and https")
            if reason:
                raise _Blocked(reason, target)

    # trust_env=False: no proxy from the environment (see the module's docstring), no .netrc
    # credentials sent to whatever host a search result names.
    async with httpx.AsyncClient(headers=headers, follow_redirects=False, timeout=config.fetch_timeout,
                                 verify=_ssl_context(), transport=transport, trust_env=False,
                                 event_hooks={"response": [check_redirect]}) as client:
        for _ in range(config.max_redirects + 1):
            if current in seen:
                return made(url, FetchStatus.REDIRECT_LOOP, final_url=current, reason=f"redirects back to {current}")
            seen.add(current)
            # Each hop: scheme, numeric and local hosts here; the addresses a name resolves to
            # when the connection is made (or here, with DNS, if the transport is not guarded).
            reason = policy.check_syntax(current) if transport else await asyncio.to_thread(policy.check, current)
            if reason:
                return _blocked(made, url, current, reason)
            entry = record("page" if image_limit is None else "image", current,
                           redirected_from=url if current != url else None)
            try:
                async with client.stream("GET", current) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        return made(url, FetchStatus.HTTP_ERROR, final_url=current, http_status=response.status_code,
                                    reason=f"HTTP {response.status_code} {response.reason_phrase}".strip())
                    content_type = response.headers.get("content-type", "")
                    mime = content_type.split(";")[0].strip().lower()
                    if image_limit is not None and not mime.startswith("image/"):
                        return made(url, FetchStatus.NOT_IMAGE, final_url=current, http_status=response.status_code,
                                    content_type=mime, reason=f"content type {mime or 'not stated'}")
                    if image_limit is None and content_type and mime not in HTML_TYPES:
                        return Page(url, FetchStatus.NOT_HTML, final_url=current, http_status=response.status_code,
                                    content_type=content_type, reason=f"content type {content_type.split(';')[0]}")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        return made(url, FetchStatus.TOO_LARGE, final_url=current, http_status=response.status_code,
                                    reason=f"{int(declared):,} bytes, over the {limit:,}-byte cap")
                    unreadable = unreadable_encoding(response.headers.get("content-encoding", ""))
                    if unreadable:  # known before a byte of the body is read
                        return made(url, FetchStatus.ERROR, final_url=current, http_status=response.status_code,
                                    content_type=mime, reason=unreadable)
                    body = bytearray()
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if len(body) > limit:  # no or wrong Content-Length: stop reading at the cap
                            return made(url, FetchStatus.TOO_LARGE, final_url=current, http_status=response.status_code,
                                        reason=f"over the {limit:,}-byte cap")
                    if response.headers.get("content-encoding"):
                        body = bytearray(_decompress(bytes(body), response.headers["content-encoding"], limit))
                    if image_limit is not None:
                        return ImageFile(url, FetchStatus.OK, final_url=current, data=bytes(body), content_type=mime,
                                         http_status=response.status_code)
                    return _content(url, bytes(body), content_type, config, response.status_code, current)
            except _Blocked as error:  # a redirect's target, or where the connection was to be made
                if entry is not None and not error.url:  # refused at the connection: it never went out
                    entry["refused"] = str(error)
                return _blocked(made, url, error.url or current, str(error))
    return made(url, FetchStatus.REDIRECT_LOOP, final_url=current,
                reason=f"more than {config.max_redirects} redirects")


def unreadable_encoding(encoding: str) -> str:
    """Why a body in this Content-Encoding cannot be read, or "" when it can."""
    encoding = encoding.strip().lower()
    if encoding in READABLE_ENCODINGS:
        return ""
    return f"unsupported content encoding {encoding[:40]} (asked for {ACCEPT_ENCODING} only)"


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
