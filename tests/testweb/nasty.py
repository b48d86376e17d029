"""Responses built to hang, exhaust or confuse a reader, for tests/test_hostile_content.py.

``serve(handler, web, path, query)`` answers one request under ``/nasty/`` (``handler`` is the
test web's request handler: ``handler.send(status, body, content_type, headers)``,
``handler.send_html(status, message)``, ``handler.wfile`` for streaming).

- ``/nasty/search``: a SearXNG-style JSON search whose results are every page of :data:`PAGES`
  plus one good article that answers questions about the Harrowmere lighthouse;
  ``/nasty/<name>/search``: the same with only that one nasty page and the article.
- the pages (:data:`PAGES` says what each does): bombs (gzip, brotli), endless and dripping
  bodies, 100 MB, lies about length and type, a huge attribute and a huge single line,
  redirect chains and loops, unknown and broken encodings, and pages for the browser whose
  scripts open dialogs without end or never let the page finish loading.

Streaming responses keep writing until the client goes away; :func:`open_streams` says how
many are still being written, so a test can check that a reader let go.
"""

from __future__ import annotations

import base64
import html
import io
import json
import threading
import time
import zipfile
import zlib
from functools import cache

__all__ = ["PAGES", "GOOD_PAGE", "serve", "open_streams", "gzip_bomb", "BROTLI_BOMB"]

GOOD_PAGE = "/articles/harrowmere-lighthouse"
MB = 1_000_000

# What each page under /nasty/ does (the search's titles).
PAGES = {
    "gzip-bomb": "1 MB of gzip that unpacks to 1 GB",
    "brotli-bomb": "900 bytes of brotli that unpack to 1 GB",
    "endless": "a chunked body that never ends",
    "drip": "a page sent one byte a second",
    "100mb": "a 100 MB page, with its Content-Length",
    "100mb-nolength": "a 100 MB page, without Content-Length",
    "length-over": "Content-Length 1000, then 10 MB",
    "length-under": "Content-Length 10 MB, then 100 bytes and the connection closed",
    "cut-short": "Content-Length 50,000, then 100 bytes and the connection closed",
    "html-as-png": "an HTML page labelled image/png",
    "zip-as-html": "a zip archive labelled text/html",
    "huge-attribute": "a page with a 5 MB attribute value",
    "one-line": "a single 5 MB line of text",
    "one-sentence": "a single 5 MB sentence, no full stop in it",
    "chain": "a chain of 12 redirects",
    "loop": "two pages redirecting to each other",
    "klingon": "a page in charset x-klingon",
    "invalid-bytes": "bytes that are not valid in the declared charset",
}

# 1 GiB of "a" after an HTML head, compressed by Node's zlib.brotliCompress (quality 11, lgwin 24):
# nothing in the Python standard library writes brotli.
BROTLI_BOMB = base64.b64decode(
    "z///fwCM0yW0V3mG2icNTk6DCIW9ccoBaxKGbRm2dRK/p6womoSH9P0zKs5EHDwsiE/Ls/O1YtCzgfe6/4+E////8EsAxGEB"
    "gO79P////+GXAIjDIgDd+3/+///DLwEQhwUAuvf//P//h18CIA4LAHTv//n//w+/BEAcFgDo3v/z//8ffgmAOCwA0L3/5///"
    "P/wSAHFYAKB7/8///3/4JQDisABA9/6f////8EsAxGEBgO79P////+GXAIjDAgDd+3/+///DLwEQhwUAuvf//P//h18CIA4L"
    "AHTv//n//w+/BEAcFgDo3v/z//8ffgmAOCwA0L3/5///P/wSAHFYAKB7/8///3/4JQDisABA9/6f////8EsAxGEBgO79P///"
    "/+GXAIjDAgDd+3/+///DLwEQhwUAuvf//P//h18CIA4LAHTv//n//w+/BEAcFgDo3v/z//8ffgmAOCwA0L3/5///P/wSAHFY"
    "AKB7/8///3/4JQDisABA9/6f////8EsAxGEBgO79P////+GXAIjDAgDd+3/+///DLwEQhwUAuvf//P//h18CIA4LAHTv//n/"
    "/w+/BEAcFgDo3v/z//8ffgmAOCwA0L3/5///P/wSAHFYAKB7/8///3/4JQDisABA9/6f////8EsAxGEBgO79P////+GXAIjD"
    "AgDd+3/+///DLwEQhwUAuvf//P//h18CIA4LAHTv//n//w+/BEAcFgDo3v/z//8ffgmAOCwA0L3/5///P/wSAHFYAKB7/8//"
    "/3/4JQDisABA9/6f////8EsAxGEBgO79P////+GXAIjDAgDd+3/+///DLwEQhwUAuvf//P//h18CIA4LAHTv//n//w+/BEAc"
    "FgDo3v/z//8ffgmAOCwA0L3/5///P/wSAHFYAKB7/8///3/4JQDisABA9/6f////8EsAxGEBgO79P////+GXAIjDAgDd+3/+"
    "///DLwEQhwUAuvf//P//h18CIA4LAHTv//n//w+/BEAcFgDo3v/z//8ffgmAOCwA0L3/5///P/wSAHFYAKB7/x9aAPglAAKw"
    "AKAC")

FILLER = ("Grey gulls wheeled above the quay while the carters unloaded barrels of salt herring and coils "
          "of tarred rope for the boatyards along the river")  # no question's words, no full stop


def _page(title: str, body: str, head: str = '<meta charset="utf-8">') -> bytes:
    return (f'<!DOCTYPE html>\n<html lang="en"><head>{head}<title>{title}</title></head>\n<body><article>'
            f"<h1>{title}</h1>\n{body}\n</article></body></html>\n").encode()


TEXT = ("<p>The harbour of Wenlow Cove was dredged in the spring, and the fishing fleet returned to its "
        "moorings after three months at the outer pier. The harbour master said the new channel is deep "
        "enough for the larger trawlers at every state of the tide.</p>")


@cache
def gzip_bomb() -> bytes:
    """1 MB of gzip that unpacks to 1 GiB (built once: about 2.5 s)."""
    packer = zlib.compressobj(9, wbits=31)
    block = b"a" * (1 << 20)
    parts = [packer.compress(b'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Gzip bomb</title></head><body><p>')]
    parts += [packer.compress(block) for _ in range(1024)]
    return b"".join(parts) + packer.flush()


@cache
def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("index.html", _page("Inside a zip", TEXT))
        archive.writestr("notes.txt", FILLER * 100)
    return out.getvalue()


@cache
def _huge_attribute() -> bytes:
    value = ("x" * 5 * MB)
    return _page("A page with a huge attribute", f'<div data-state="{value}" title="{value[:100]}">{TEXT}</div>')


@cache
def _one_line(stop: str) -> bytes:
    """5 MB on one line: sentences (``stop`` "."), or a single sentence (``stop`` "")."""
    line = " ".join([FILLER + stop] * (5 * MB // (len(FILLER) + 2)))
    return _page("A single long line", f"{TEXT}<p>{line}</p>").replace(b"\n", b" ")


# Dialogs without end: alert, confirm and prompt in a loop, and again on a timer.
DIALOG_STORM = _page("Dialogs without end", f"""{TEXT}
<script>
for (let i = 0; i < 200; i++) {{ alert("Click OK " + i); confirm("Really? " + i); prompt("Your name?", i); }}
setInterval(() => {{ alert("again"); confirm("again?"); prompt("again"); }}, 10);
onbeforeunload = () => "Leave?";
</script>""")
# A page that never finishes loading: a script in its <head> that never arrives holds up the
# DOM (the script's body drips forever).
NEVER_LOADS = _page("A page that never finishes loading", TEXT,
                    head='<meta charset="utf-8"><script src="/nasty/drip?type=text/javascript"></script>')
# (A script that loops forever is the test web's /busy.)
BROWSER_PAGES = {"dialog-storm": DIALOG_STORM, "never-loads": NEVER_LOADS}

_streams = 0
_streams_lock = threading.Lock()


def open_streams() -> int:
    """How many endless or dripping responses are still being written."""
    with _streams_lock:
        return _streams


class _Streaming:
    def __enter__(self):
        global _streams
        with _streams_lock:
            _streams += 1

    def __exit__(self, *exc):
        global _streams
        with _streams_lock:
            _streams -= 1


def _search(handler, web, path: str, query: dict) -> None:
    name = path.removeprefix("/nasty/").removesuffix("search").strip("/")
    if name and name not in PAGES and name not in BROWSER_PAGES:
        return handler.send_html(404, "Not Found")
    names = [name] if name else list(PAGES)
    results = [{"url": f"{web.url}/nasty/{n}", "title": PAGES.get(n, n), "content": "", "engine": "nasty",
                "engines": ["nasty"], "score": 1.0} for n in names]
    results.append({"url": web.url + GOOD_PAGE, "title": "Harrowmere Point Lighthouse", "content": "",
                    "engine": "nasty", "engines": ["nasty"], "score": 0.5})
    q = query.get("q", [""])[0]
    handler.send(200, json.dumps({"query": q, "results": results}).encode(), "application/json")


def _headers(handler, status: int, headers: dict[str, str]) -> None:
    handler.send_response(status)
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.end_headers()


def _endless(handler) -> None:
    """Chunked, forever, until the client goes away."""
    _headers(handler, 200, {"Content-Type": "text/html; charset=utf-8", "Transfer-Encoding": "chunked"})
    chunk = f"<p>{FILLER}.</p>\n".encode() * 64
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    handler.close_connection = True
    with _Streaming():
        handler.wfile.write(f"{len(b'<html><body>'):x}\r\n<html><body>\r\n".encode())
        while True:
            handler.wfile.write(framed)


def _drip(handler, query: dict) -> None:
    """A page one byte a second, its length stated, so a reader has every reason to wait."""
    ctype = query.get("type", ["text/html; charset=utf-8"])[0]
    body = b"/* " + FILLER.encode() * 20 + b" */" if "javascript" in ctype else _page("Dripping", TEXT)
    _headers(handler, 200, {"Content-Type": ctype, "Content-Length": str(len(body))})
    handler.close_connection = True
    with _Streaming():
        for i in range(len(body)):
            handler.wfile.write(body[i:i + 1])
            handler.wfile.flush()
            time.sleep(1.0)


def _stream(handler, size: int, headers: dict[str, str]) -> None:
    """``size`` bytes of HTML paragraphs after the ``headers``."""
    _headers(handler, 200, headers)
    handler.close_connection = True
    head = b'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Very large</title></head><body><article>'
    paragraph = f"<p>{FILLER}.</p>\n".encode()
    block = paragraph * (65536 // len(paragraph))
    with _Streaming():
        handler.wfile.write(head)
        sent = len(head)
        while sent < size:
            piece = block[:size - sent]
            handler.wfile.write(piece)
            sent += len(piece)


def _redirect(handler, location: str) -> None:
    handler.send(302, f'<a href="{html.escape(location)}">Moved</a>'.encode(), headers={"Location": location})


def serve(handler, web, path: str, query: dict) -> None:
    if path.endswith("/search"):
        return _search(handler, web, path, query)
    name = path.removeprefix("/nasty/")
    if name in BROWSER_PAGES:
        return handler.send(200, BROWSER_PAGES[name])
    if name == "gzip-bomb":
        return handler.send(200, gzip_bomb(), headers={"Content-Encoding": "gzip"})
    if name == "brotli-bomb":
        return handler.send(200, BROTLI_BOMB, headers={"Content-Encoding": "br"})
    if name == "endless":
        return _endless(handler)
    if name == "drip":
        return _drip(handler, query)
    if name in ("100mb", "100mb-nolength"):
        headers = {"Content-Type": "text/html; charset=utf-8"}
        if name == "100mb":
            headers["Content-Length"] = str(100 * MB)
        return _stream(handler, 100 * MB, headers)
    if name == "length-over":  # says 1000 bytes, sends 10 MB
        return _stream(handler, 10 * MB, {"Content-Type": "text/html; charset=utf-8", "Content-Length": "1000"})
    if name in ("length-under", "cut-short"):  # says 10 MB (or 50,000), sends 100 bytes and hangs up
        claims = str(10 * MB) if name == "length-under" else "50000"
        _headers(handler, 200, {"Content-Type": "text/html; charset=utf-8", "Content-Length": claims})
        handler.wfile.write(_page("Cut short", TEXT)[:100])
        handler.close_connection = True
        return None
    if name == "html-as-png":
        return handler.send(200, _page("Labelled as a picture", TEXT), "image/png")
    if name == "zip-as-html":
        return handler.send(200, _zip(), "text/html; charset=utf-8")
    if name == "huge-attribute":
        return handler.send(200, _huge_attribute())
    if name in ("one-line", "one-sentence"):
        return handler.send(200, _one_line("." if name == "one-line" else ""))
    if name == "chain" or name.startswith("chain/"):  # /nasty/chain/<n>: n more hops to the article
        left = int(name.partition("/")[2] or 12)
        return _redirect(handler, f"/nasty/chain/{left - 1}" if left > 1 else GOOD_PAGE)
    if name in ("loop", "loop/a", "loop/b"):
        return _redirect(handler, "/nasty/loop/b" if name != "loop/b" else "/nasty/loop/a")
    if name == "klingon":  # an encoding no one has, in the header and the <meta>
        return handler.send(200, _page("Klingon", TEXT, head='<meta charset="x-klingon">'),
                            "text/html; charset=x-klingon")
    if name == "invalid-bytes":  # says UTF-8; half its accents are Latin-1 and there is a stray byte order mark
        body = _page("Invalid bytes", TEXT.replace("harbour master", "capitaine de port caf\xe9") + "<p>caf\xe9</p>")
        return handler.send(200, body.replace("caf\xe9".encode(), b"caf\xe9\xff\xfe", 1), "text/html; charset=utf-8")
    return handler.send_html(404, "Not Found")
