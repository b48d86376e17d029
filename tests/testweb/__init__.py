"""Offline "test web": a small stdlib HTTP server on 127.0.0.1 that stands in for the internet.

It serves eight fictional article pages (``/articles/<slug>``), a SearXNG-compatible search
endpoint over them (``/search?q=...&format=json``) and a set of misbehaving routes for
error-handling tests (bad status codes, slow, huge, binary, mis-labelled and badly encoded pages,
redirect loops, an open redirect ``/redirect-to?url=...``).  Page sources live in
``pages/<slug>.html`` as UTF-8 and are re-encoded at serve time according to :data:`ARTICLES`.

    with TestWeb() as web:
        httpx.get(web.url + "/search", params={"q": "lighthouse", "format": "json"})
"""

from __future__ import annotations

import html
import json
import math
import random
import re
import socketserver
import threading
import zlib
import time
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

__all__ = ["TestWeb", "Article", "ARTICLES", "articles"]

PAGES_DIR = Path(__file__).with_name("pages")

# slug -> (encoding of the served bytes, whether the Content-Type header names the charset)
ARTICLES: dict[str, tuple[str, bool]] = {
    "harrowmere-lighthouse": ("utf-8", True),
    "velkaro-glass-beetle": ("iso-8859-1", True),  # no <meta charset>: header only
    "quillstone-3-release": ("utf-8", True),
    "brennick-rovers-calder-shield": ("utf-8", True),
    "oldenvale-saffron-plum-tart": ("windows-1252", False),  # <meta charset> only
    "tessaly-dam-disaster-1911": ("utf-8", True),
    "norvane-battery-ferries": ("utf-8", True),
    "kestrel-valley-comet": ("utf-8", True),
}

STOPWORDS = set(
    "the and for are was were what which who whom whose when where why how many much does did do "
    "has have had with from that this these those into its his her their they them there than then "
    "been being about after before over under not but can could would should will each per one "
    "also our your you all any some more most other such only own same very just".split()
)


CHARSET_TEXT = "Plain words with one accent: café."


@cache
def _gzip_bomb() -> bytes:
    packer = zlib.compressobj(wbits=31)
    return packer.compress(b"<p>" + b"a" * 20_000_000 + b"</p>") + packer.flush()


@dataclass(frozen=True)
class Article:
    """One served article: its path, plain title/body text (for search) and encoded bytes."""

    slug: str
    path: str
    title: str
    text: str
    encoding: str
    header_charset: bool
    body: bytes

    @property
    def content_type(self) -> str:
        return f"text/html; charset={self.encoding}" if self.header_charset else "text/html"


def _plain(fragment: str) -> str:
    """Strip tags and entities, collapse whitespace."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


@cache
def articles() -> tuple[Article, ...]:
    """Load the article pages (once) from ``pages/``."""
    out = []
    for slug, (encoding, header_charset) in ARTICLES.items():
        source = (PAGES_DIR / f"{slug}.html").read_text(encoding="utf-8")
        title = _plain(re.search(r"<title>(.*?)</title>", source, re.S).group(1))
        body = re.search(r'<div class="post-body">(.*?)</div>', source, re.S).group(1)
        out.append(Article(slug, f"/articles/{slug}", title, _plain(body), encoding,
                           header_charset, source.encode(encoding)))
    return tuple(out)


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"\w{3,}", text.casefold()) if w not in STOPWORDS]


def _search(query: str) -> list[tuple[float, Article]]:
    """Rank articles by IDF-weighted keyword overlap with title (x3) and body; score > 0 only."""
    arts = articles()
    docs = [(set(_words(a.title)), _words(a.text)) for a in arts]
    ranked = []
    for art, (title_words, body_words) in zip(arts, docs):
        score = 0.0
        for term in set(_words(query)):
            df = sum(term in t or term in b for t, b in docs)
            tf = body_words.count(term)
            if df and (tf or term in title_words):
                idf = math.log((len(arts) + 1) / (df + 0.5))
                score += idf * ((1 + math.log(tf) if tf else 0) + 2 * (term in title_words))
        if score > 0:
            ranked.append((round(score, 4), art))
    ranked.sort(key=lambda x: (-x[0], x[1].slug))
    return ranked[:10]


def _snippet(text: str, n: int = 150) -> str:
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0] + " …"


def _simple_page(title: str, paragraphs: list[str], charset_meta: str = '<meta charset="utf-8">',
                 lang: str = "en") -> str:
    """A plain article-like page (title, nav, <article>, footer)."""
    ps = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html>\n<html lang="{lang}"><head>{charset_meta}<title>{title}</title>'
            f'</head>\n<body><nav><a href="/">Home</a> | <a href="/news">News</a></nav>\n'
            f"<article><h1>{title}</h1>\n{ps}\n</article>\n"
            f"<footer><p>&copy; 2024 Test Web. All rights reserved.</p></footer></body></html>\n")


SLOW_PAGE = _simple_page("The Gannet Hill tramway closes after 92 years", [
    "The Gannet Hill tramway, a funicular line that has carried passengers up the cliff above the "
    "village of Porth Ellery since 1932, ran for the last time on Sunday evening.",
    "Its two cars, named Puffin and Razorbill, climbed 118 metres in a little under four minutes. "
    "Engineers found cracks in the haul cable's anchor block last winter, and the parish council "
    "decided that a repair costing an estimated 1.9 million pounds could not be justified.",
    "A farewell ride was organised for former drivers, including 81-year-old Dilys Tregarthen, who "
    "worked on the line for thirty-four years. The council hopes to turn the lower station into a "
    "small museum about the tramway and the fishing community it served.",
]).encode()

BAD_UTF8_PAGE = _simple_page("Pellham Bridge toll to be abolished after 61 years", [
    "Drivers crossing the Pellham Bridge will no longer pay a toll from 1 January 2025, the county "
    "council confirmed on Tuesday. The toll, currently 1.20 pounds per car, was introduced in 1963 "
    "to repay the cost of building the bridge over the River Wensey.",
    "Council leader Margit Okonkwo-Fraser said the original loan had been repaid in 1997 @@FFFE@@ and "
    "that the toll had since funded maintenance. Caf@@C3@@ owners on both banks welcomed the decision, "
    "saying the charge had split the town in two for too long.",
    "Maintenance will now be funded from the general highways budget. The toll booths will be removed "
    "during a three-week closure planned for February, and one booth will be donated to the town museum.",
]).encode().replace(b"@@FFFE@@", b"\xff\xfe").replace(b"@@C3@@", b"\xc3")

EMPTY_PAGE = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Page not available</title>'
    '</head>\n<body><div class="cookie-consent"><p>We use cookies.</p><button>Accept</button></div>\n'
    '<header><nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li>'
    '<li><a href="/contact">Contact</a></li></ul></nav></header>\n<main></main>\n'
    '<footer><p>&copy; 2024 Test Web. All rights reserved.</p><a href="/privacy">Privacy</a></footer>'
    "</body></html>\n").encode()

# A single-page app: the server sends an empty shell, and the text exists only once the script
# has run (what "ask about this page" must read from the rendered DOM).
RENDERED_TEXT = ("The Orrin signal tower on Kelmer Point was rebuilt in 1962 by the Carrow engineering guild, "
                 "after a winter storm had thrown its old timber mast into the sea. The new tower is "
                 "twenty-two metres tall and is built of riveted steel.")
SCRIPTED_PAGE = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Kelmer Point history</title></head>\n'
    '<body><div id="app">Loading...</div>\n<script>\nsetTimeout(() => {\n'
    '  const app = document.getElementById("app");\n'
    '  app.innerHTML = "<article><h1>The Orrin signal tower</h1><p></p></article>";\n'
    f'  app.querySelector("p").textContent = {json.dumps(RENDERED_TEXT)};\n'
    '  document.body.dataset.rendered = "yes";\n}, 300);\n</script></body></html>\n').encode()

def _scripted(title: str, script: str, body: str = "") -> bytes:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>\n'
            f'<body>{body}<div id="app"></div>\n<script>\n{script}\n</script></body></html>\n').encode()


# Pages for the browser fetcher: one that tries to reach other addresses (a script, an image, a
# fetch), one that opens dialogs and pop-ups, one whose script never ends.
def _reaching_page(target: str) -> bytes:
    return _scripted("Reaching out", f"""
document.getElementById("app").textContent = {json.dumps(RENDERED_TEXT)};
fetch({json.dumps(target + "/fetched")}).catch(() => {{}});
const s = document.createElement("script"); s.src = {json.dumps(target + "/script.js")}; document.body.append(s);
""", body=f'<img src="{html.escape(target)}/image.png" width="600" height="400">')


def _prying_page(target: str) -> bytes:
    """A page whose script tries to read another server's answer, directly and through a
    redirect of its own origin, and to reach it over WebRTC (``target`` is host:port)."""
    return _scripted("Prying", f"""
document.getElementById("app").textContent = {json.dumps(RENDERED_TEXT)};
const out = (text) => {{ const p = document.createElement("p"); p.className = "read"; p.textContent = text;
                         document.body.append(p); }};
fetch("http://{target}/secret").then((r) => r.text()).then(out).catch(() => out("direct: refused"));
fetch("/redirect-to?url=" + encodeURIComponent("http://{target}/secret")).then((r) => r.text()).then(out)
  .catch(() => out("redirect: refused"));
const [host, port] = {json.dumps(target)}.split(":");
const peer = new RTCPeerConnection({{ iceServers: [{{ urls: "stun:" + host + ":" + port }}] }});
peer.createDataChannel("x");
peer.createOffer().then((offer) => peer.setLocalDescription(offer));
""")


DIALOG_PAGE = _scripted("Dialogs", f"""
alert("Click OK to continue"); confirm("Really?"); window.open("/articles/harrowmere-lighthouse");
document.getElementById("app").textContent = {json.dumps(RENDERED_TEXT)};""")
BUSY_PAGE = _scripted("Busy", "document.title = 'still going'; while (true) {}",
                      body=f"<p>{html.escape(RENDERED_TEXT)}</p>")

HUGE_HEAD = b"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Huge page</title></head><body><article><h1>A very long page</h1>\n"
HUGE_PARA = (b"<p>" + b"This paragraph is repeated many times to make a page of about twelve megabytes. " * 12 + b"</p>\n")
HUGE_TAIL = b"</article></body></html>\n"
HUGE_PARAS = 12_000_000 // len(HUGE_PARA)

_rng = random.Random(1234)
BINARY = _rng.randbytes(20 * 1024)
PNG_AS_HTML = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _rng.randbytes(4096)
PDF = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
       b"2 0 obj\n<< /Length 4000 >>\nstream\n" + _rng.randbytes(4000) + b"\nendstream\nendobj\n%%EOF\n")


class _Handler(BaseHTTPRequestHandler):
    """Routes GET requests; every response has Content-Type and (except /huge-nolength) Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "TestWeb/1.0"
    sys_version = ""
    timeout = 30  # idle keep-alive connections are dropped after this
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls

    def log_message(self, format, *args):  # noqa: A002 - silence per-request logging
        pass

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, TimeoutError):  # client went away (e.g. closed /huge early)
            pass

    def send(self, status: int, body: bytes = b"", ctype: str = "text/html; charset=utf-8",
             headers: dict[str, str] | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if status not in (204, 304):
            self.wfile.write(body)

    def send_html(self, status: int, message: str):
        self.send(status, _simple_page(f"{status} {message}", [message]).encode())

    def send_article(self, art: Article):
        self.send(200, art.body, art.content_type)

    def do_GET(self):
        web: TestWeb = self.server.web
        web._log(self.path)
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        by_slug = {a.slug: a for a in articles()}

        if m := re.fullmatch(r"/articles/([\w-]+)", path):
            return self.send_article(by_slug[m[1]]) if m[1] in by_slug else self.send_html(404, "Not Found")
        if path == "/search":
            return self.search(web, query)
        if path.startswith("/docs/") and path.endswith("/search"):  # a question set's search: testweb/docs.py
            from .docs import set_at

            if (set_name := set_at(path)) is not None:
                return self.search_docs(web, query, set_name)
        if path.startswith("/docs/"):  # real documentation: see testweb/docs.py
            from .docs import resolve

            file = resolve(path)
            if file is None:
                return self.send_html(404, "Not Found")
            return self.send(200, file.read_bytes(), "text/html")  # the page's own <meta charset> says
        if path.startswith("/pictures/"):  # pages whose text lives in images: see testweb/pictures.py
            return self.pictures(web, path, query)
        if path.startswith("/hostile/"):  # pages that try to steer the answer: see testweb/hostile.py
            from .hostile import serve as serve_hostile

            return serve_hostile(self, web, path, query)
        if path.startswith("/nasty/"):  # responses built to hang or exhaust a reader: see testweb/nasty.py
            from .nasty import serve as serve_nasty

            return serve_nasty(self, web, path, query)
        if path == "/slow-first/search":  # a SearXNG whose first result takes 30 s to load
            return self.search(web, {**query, "first": ["/slow?seconds=30"]})
        if path == "/broken-first/search":  # a SearXNG whose first result is a page that is gone
            return self.search(web, {**query, "first": ["/status/404"]})
        if path == "/app":
            return self.send(200, SCRIPTED_PAGE)
        if path == "/brave/res/v1/web/search":  # the Brave Search API's shape; the key is "test-key"
            if self.headers.get("X-Subscription-Token") != "test-key":
                return self.send(401, b'{"error": "invalid key"}', "application/json")
            q = query.get("q", [""])[0]
            rows = [{"url": web.url + a.path, "title": a.title, "description": _snippet(a.text)}
                    for _, a in _search(q)][: int(query.get("count", ["20"])[0])]
            return self.send(200, json.dumps({"web": {"results": rows}}).encode(), "application/json")
        if path == "/ratelimited/search":  # a search service that has had enough of us
            return self.send(429, b"Too Many Requests", "text/plain")
        if path == "/captcha/search":  # one that asks for a human
            return self.send(200, b"<html><form><p>Please solve this CAPTCHA to continue</p></form></html>")
        if path == "/nothing/search":  # one that works and finds nothing
            return self.send(200, json.dumps({"query": "", "results": []}).encode(), "application/json")
        if path == "/with-app/search":  # a SearXNG whose first result is the single-page app
            return self.search(web, {**query, "first": ["/app"]})
        if path == "/reaching":  # ?target=http://host:port: a page whose script and image go there
            return self.send(200, _reaching_page(query.get("target", ["http://10.0.0.1"])[0]))
        if path == "/prying":  # ?target=host:port
            return self.send(200, _prying_page(query.get("target", ["10.0.0.1:80"])[0]))
        if path == "/dialogs":
            return self.send(200, DIALOG_PAGE)
        if path == "/busy":
            return self.send(200, BUSY_PAGE)
        # Broken SearXNG instances: a client configured with searxng_url = <web.url>/garbage
        # (or /down, /wrongshape) asks <that>/search and meets the broken twin.
        path = {"/garbage/search": "/search-garbage", "/down/search": "/search-down",
                "/wrongshape/search": "/search-wrongshape"}.get(path, path)
        if path == "/search-garbage":
            return self.send(200, b"<html>not json</html>", "application/json")
        if path == "/search-down":
            return self.send_html(503, "Service Unavailable")
        if path == "/search-wrongshape":
            return self.send(200, b'{"results": "nope"}', "application/json")
        if m := re.fullmatch(r"/status/(\d{3})", path):
            code = int(m[1])
            return self.send_html(code, f"Status {code}") if 200 <= code <= 599 else self.send_html(404, "Not Found")
        if path == "/slow":
            try:
                time.sleep(max(0.0, float(query.get("seconds", ["5"])[0])))
            except ValueError:
                return self.send_html(400, "Bad Request: seconds must be a number")
            return self.send(200, SLOW_PAGE)
        if (m := re.fullmatch(r"/delay/(\d+)/([\w-]+)", path)) and m[2] in by_slug:
            time.sleep(int(m[1]) / 1000)
            return self.send_article(by_slug[m[2]])
        if path == "/file.pdf":
            return self.send(200, PDF, "application/pdf")
        if path == "/binary":
            return self.send(200, BINARY, "application/octet-stream")
        if path == "/png-as-html":
            return self.send(200, PNG_AS_HTML, "text/html")
        if path in ("/huge", "/huge-nolength"):
            return self.huge(with_length=path == "/huge")
        if m := re.fullmatch(r"/redirect-loop/([ab])", path):
            return self.redirect(302, "/redirect-loop/" + ("b" if m[1] == "a" else "a"))
        if (m := re.fullmatch(r"/redirect/([\w-]+)", path)) and m[1] in by_slug:
            return self.redirect(301, f"/articles/{m[1]}")
        if path == "/redirect-to":  # an open redirect: Location is whatever ?url= says
            status = query.get("status", ["302"])[0]
            return self.redirect(int(status) if status in ("301", "302", "303", "307", "308") else 302,
                                 query.get("url", ["/"])[0])
        if path == "/bad-utf8":
            return self.send(200, BAD_UTF8_PAGE)
        if path == "/empty":
            return self.send(200, EMPTY_PAGE)
        if path == "/gzip-bomb":  # 20 KB on the wire, 20 MB once unpacked
            return self.send(200, _gzip_bomb(), headers={"Content-Encoding": "gzip"})
        if path == "/deflate-raw":  # deflate without the zlib wrapper, as some servers send it
            packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            body = packer.compress(by_slug["harrowmere-lighthouse"].body) + packer.flush()
            return self.send(200, body, headers={"Content-Encoding": "deflate"})
        if path == "/meta-base64":  # a <meta charset> naming a codec that is no text encoding
            return self.send(200, _simple_page("Odd charset", [CHARSET_TEXT], '<meta charset="base64">').encode(), "text/html")
        if path == "/meta-utf16":  # browsers read a UTF-16 <meta> on a BOM-less page as UTF-8
            return self.send(200, _simple_page("Odd charset", [CHARSET_TEXT], '<meta charset="utf-16">').encode(), "text/html")
        return self.send_html(404, "Not Found")

    def redirect(self, status: int, location: str):
        self.send(status, f'<a href="{location}">Moved</a>'.encode(), headers={"Location": location})

    def search(self, web: TestWeb, query: dict[str, list[str]]):
        """SearXNG-style JSON results; ``extra=/a,/b`` appends those paths as further results."""
        if query.get("format", [""])[0] != "json":
            return self.send_html(400, "Bad Request: only format=json is supported")
        q = query.get("q", [""])[0]
        results = [{"url": web.url + a.path, "title": a.title, "content": _snippet(a.text),
                    "engine": "testweb", "engines": ["testweb"], "score": score}
                   for score, a in _search(q)]
        for extra in filter(None, query.get("extra", [""])[0].split(",")):
            results.append({"url": web.url + extra, "title": f"Test page {extra}", "content": "",
                            "engine": "testweb", "engines": ["testweb"], "score": 0.0})
        for first in query.get("first", []):
            results.insert(0, {"url": web.url + first, "title": f"Test page {first}", "content": "",
                               "engine": "testweb", "engines": ["testweb"], "score": 1.0})
        body = {"query": q, "number_of_results": len(results), "results": results}
        self.send(200, json.dumps(body, ensure_ascii=False).encode(), "application/json")

    def pictures(self, web: TestWeb, path: str, query: dict[str, list[str]]):
        from . import pictures

        if path == "/pictures/search":
            q = query.get("q", [""])[0]
            results = [{"url": web.url + found, "title": title, "content": "", "engine": "pictures",
                        "engines": ["pictures"], "score": 1.0} for found, title in pictures.search(q)]
            return self.send(200, json.dumps({"query": q, "results": results}).encode(), "application/json")
        if path.startswith("/pictures/img/"):
            served = pictures.image(path.rsplit("/", 1)[-1])
            return self.send(200, *served) if served else self.send_html(404, "Not Found")
        body = pictures.page(path.rsplit("/", 1)[-1])
        return self.send(200, body) if body else self.send_html(404, "Not Found")

    def search_docs(self, web: TestWeb, query: dict[str, list[str]], set_name: str = "docs"):
        """SearXNG-style JSON results over the installed documentation of one question set."""
        from .docs import search

        if query.get("format", [""])[0] != "json":
            return self.send_html(400, "Bad Request: only format=json is supported")
        q = query.get("q", [""])[0]
        results = [{"url": web.url + page.path, "title": page.title, "content": "", "engine": "docs",
                    "engines": ["docs"], "score": score} for score, page in search(q, set_name=set_name)]
        body = {"query": q, "number_of_results": len(results), "results": results}
        self.send(200, json.dumps(body, ensure_ascii=False).encode(), "application/json")

    def huge(self, with_length: bool):
        """~12 MB of HTML paragraphs, streamed in chunks."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if with_length:
            self.send_header("Content-Length", str(len(HUGE_HEAD) + HUGE_PARAS * len(HUGE_PARA) + len(HUGE_TAIL)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(HUGE_HEAD)
        chunk, left = HUGE_PARA * 64, HUGE_PARAS
        while left:
            n = min(64, left)
            self.wfile.write(chunk if n == 64 else HUGE_PARA * n)
            left -= n
        self.wfile.write(HUGE_TAIL)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # don't wait for idle keep-alive connections on stop()
    request_queue_size = 128  # listen backlog; the default 5 stalls bursts of concurrent connects

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # skip HTTPServer's getfqdn() (DNS lookup)
        self.server_name, self.server_port = self.server_address[:2]


class TestWeb:
    """The test web server.  ``start()``/``stop()`` or use as a context manager."""

    __test__ = False  # not a pytest test class

    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        self.host, self.port = host, port
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> TestWeb:
        self._server = _Server((self.host, self.port), _Handler)
        self._server.web = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="testweb", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def _log(self, path: str) -> None:
        with self._lock:
            self.requests.append(path)

    def count(self, path_prefix: str) -> int:
        """How many logged request paths start with ``path_prefix``."""
        with self._lock:
            return sum(p.startswith(path_prefix) for p in self.requests)

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def article_urls(self) -> list[str]:
        return [self.url + a.path for a in articles()]

    def __enter__(self) -> TestWeb:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
