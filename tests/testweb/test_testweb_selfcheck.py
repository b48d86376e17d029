"""Self-checks for the offline test web: search ranking, extractability, encodings, log, redirects."""

import json
import re
from pathlib import Path

import httpx
import pytest
import trafilatura

from . import ARTICLES, TestWeb, articles

QA = [json.loads(line) for line in Path(__file__).with_name("qa.jsonl").read_text("utf-8").splitlines() if line]
BOILERPLATE = ["We use cookies", "cookie policy", "All rights reserved", "Advertisement", "Sponsored:",
               "Related articles", "Subscribe to our newsletter", "Leave a comment", "Share this article"]


@pytest.fixture(scope="module")
def web():
    with TestWeb() as w:
        yield w


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=10) as c:
        yield c


def decode(resp: httpx.Response) -> str:
    """Decode with the header charset, else the <meta charset>, else UTF-8."""
    m = re.search(r"charset=([\w-]+)", resp.headers["content-type"]) or \
        re.search(rb'<meta charset="([\w-]+)"', resp.content[:2048])
    charset = m[1] if m else "utf-8"
    return resp.content.decode(charset if isinstance(charset, str) else charset.decode())


def test_qa_file_covers_all_pages():
    assert len(QA) >= 48
    golds = [q["gold"][0] for q in QA]
    assert {g.removeprefix("/articles/") for g in golds} == set(ARTICLES)
    assert all(golds.count(g) >= 6 for g in golds)


@pytest.mark.parametrize("qa", [QA[0], QA[len(QA) // 2], QA[-1]], ids=lambda q: q["gold"][0])
def test_search_ranks_gold_first(web, client, qa):
    data = client.get(web.url + "/search", params={"q": qa["question"], "format": "json"}).json()
    assert data["query"] == qa["question"] and data["number_of_results"] == len(data["results"])
    top = data["results"][0]
    assert top["url"] == web.url + qa["gold"][0]
    assert top["engine"] == "testweb" and top["score"] > 0 and 0 < len(top["content"]) < 200


def test_search_format_and_extra(web, client):
    assert client.get(web.url + "/search", params={"q": "comet"}).status_code == 400
    data = client.get(web.url + "/search", params={"q": "comet", "format": "json",
                                                    "extra": "/status/404,/slow"}).json()
    assert [r["url"] for r in data["results"][-2:]] == [web.url + "/status/404", web.url + "/slow"]
    assert client.get(web.url + "/search", params={"q": "zzzz qqqq", "format": "json"}).json()["results"] == []


@pytest.mark.parametrize("art", articles(), ids=lambda a: a.slug)
def test_article_extracts_with_answers(web, client, art):
    resp = client.get(web.url + art.path)
    assert resp.status_code == 200 and resp.headers["content-type"] == art.content_type
    doc = trafilatura.bare_extraction(decode(resp), url=web.url + art.path, with_metadata=True)
    assert doc.title and doc.date.startswith("2024-")
    assert 600 <= len(doc.text.split()) <= 1500
    for qa in (q for q in QA if q["gold"] == [art.path]):
        assert re.search(qa["answer_pattern"], doc.text, re.I), qa["question"]
    leaked = [b for b in BOILERPLATE if b.lower() in doc.text.lower()]
    assert not leaked


def test_legacy_charsets(web, client):
    latin = client.get(web.url + "/articles/velkaro-glass-beetle")
    assert latin.headers["content-type"] == "text/html; charset=iso-8859-1"
    with pytest.raises(UnicodeDecodeError):
        latin.content.decode("utf-8")
    assert all(w in latin.content.decode("iso-8859-1") for w in ["muñozae", "Jürgen", "Östmark", "Ñaupacocha"])

    cp = client.get(web.url + "/articles/oldenvale-saffron-plum-tart")
    assert cp.headers["content-type"] == "text/html"
    assert b'<meta charset="windows-1252">' in cp.content and b"\x80" in cp.content  # € in cp1252
    assert all(w in cp.content.decode("cp1252") for w in ["€4.80", "“secret”", "Marijke’s", "crème fraîche"])


def test_request_log(web, client):
    web.clear_log()
    client.get(web.url + "/articles/kestrel-valley-comet")
    client.get(web.url + "/status/500?x=1")
    client.get(web.url + "/status/404")
    assert web.requests == ["/articles/kestrel-valley-comet", "/status/500?x=1", "/status/404"]
    assert web.count("/status/") == 2 and web.count("/articles/") == 1
    assert len(web.article_urls()) == 8 and all(u.startswith(web.url + "/articles/") for u in web.article_urls())


def test_redirects(web, client):
    web.clear_log()
    with pytest.raises(httpx.TooManyRedirects):
        client.get(web.url + "/redirect-loop/a", follow_redirects=True)
    assert web.requests[:4] == ["/redirect-loop/a", "/redirect-loop/b"] * 2
    resp = client.get(web.url + "/redirect/tessaly-dam-disaster-1911", follow_redirects=True)
    assert resp.status_code == 200 and resp.history[0].status_code == 301
    assert str(resp.url) == web.url + "/articles/tessaly-dam-disaster-1911"


@pytest.mark.parametrize("path,status,ctype,prefix", [
    ("/search-garbage", 200, "application/json", b"<html>"),
    ("/search-down", 503, "text/html; charset=utf-8", b"<!DOCTYPE"),
    ("/search-wrongshape", 200, "application/json", b'{"results": "nope"}'),
    ("/status/418", 418, "text/html; charset=utf-8", b"<!DOCTYPE"),
    ("/file.pdf", 200, "application/pdf", b"%PDF-1.4"),
    ("/binary", 200, "application/octet-stream", b""),
    ("/png-as-html", 200, "text/html", b"\x89PNG\r\n\x1a\n"),
    ("/slow?seconds=0.1", 200, "text/html; charset=utf-8", b"<!DOCTYPE"),
    ("/delay/50/norvane-battery-ferries", 200, "text/html; charset=utf-8", b"<!DOCTYPE"),
    ("/bad-utf8", 200, "text/html; charset=utf-8", b"<!DOCTYPE"),
    ("/empty", 200, "text/html; charset=utf-8", b"<!DOCTYPE"),
    ("/huge", 200, "text/html; charset=utf-8", b"<!DOCTYPE"),
    ("/nowhere", 404, "text/html; charset=utf-8", b"<!DOCTYPE"),
])
def test_special_routes(web, client, path, status, ctype, prefix):
    resp = client.get(web.url + path)
    assert (resp.status_code, resp.headers["content-type"]) == (status, ctype)
    assert resp.content.startswith(prefix) and int(resp.headers["content-length"]) == len(resp.content)


def test_special_pages_content(web, client):
    assert len(client.get(web.url + "/binary").content) == 20 * 1024
    with pytest.raises(UnicodeDecodeError):
        client.get(web.url + "/bad-utf8").content.decode("utf-8")
    empty = trafilatura.extract(client.get(web.url + "/empty").text)
    assert empty is None or len(empty) < 50
    huge = client.get(web.url + "/huge-nolength")
    assert "content-length" not in huge.headers and len(huge.content) > 11_000_000
