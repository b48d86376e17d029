"""Self-checks of the real documentation on the test web (testweb/docs.py): the manuals are
installed and served as they are, the search over them works, and the question set over them
is sound (its gold pages exist and state its answers, its questions do not give them away)."""

from __future__ import annotations

import html
import json
import re
import socket

import httpx
import pytest

from . import TestWeb
from . import docs


@pytest.fixture(scope="module")
def web():
    with TestWeb() as server:
        yield server


def questions() -> list[dict]:
    return [json.loads(line) for line in docs.QA_FILE.read_text("utf-8").splitlines() if line.strip()]


def plain(file) -> str:
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", file.read_text("utf-8", errors="replace"), flags=re.S | re.I)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def test_the_manuals_are_installed():
    assert docs.missing_packages() == [], "apt-get install " + " ".join(docs.missing_packages())
    counts = {corpus: sum(page.corpus == corpus for page in docs.index().pages) for corpus in docs.CORPORA}
    assert counts["postgresql"] > 1000 and counts["git"] > 100 and counts["debian-reference"] >= 10, counts


def test_pages_are_served_as_installed(web):
    page = next(p for p in docs.index().pages if p.path == "/docs/postgresql/sql-createindex.html")
    response = httpx.get(web.url + page.path, timeout=10)
    assert response.status_code == 200 and response.content == page.file.read_bytes()
    assert httpx.get(web.url + "/docs/postgresql/no-such-page.html", timeout=10).status_code == 404


@pytest.mark.parametrize("path", ["/docs/git/../../../../etc/passwd", "/docs/git/%2e%2e/%2e%2e/etc/passwd",
                                  "/docs/nothing/x.html", "/docs/git"])
def test_nothing_outside_the_manuals_is_served(web, path):
    assert docs.resolve(path) is None
    with socket.create_connection((web.host, web.port), timeout=10) as connection:  # no client normalises it
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert connection.makefile("rb").readline().split()[1] == b"404"


def test_the_search_answers_like_searxng(web):
    found = httpx.get(web.url + "/docs/search", params={"q": "create index concurrently", "format": "json"},
                      timeout=10).json()
    assert len(found["results"]) == 10 and all(r["url"].startswith(web.url + "/docs/") for r in found["results"])
    assert any(r["url"].endswith("/sql-createindex.html") for r in found["results"][:3])


def test_the_question_set_is_sound():
    items = questions()
    assert len(items) >= 60
    for item in items:
        pattern = re.compile(item["answer_pattern"], re.I)
        assert not pattern.search(item["question"]), f"the question gives its answer away: {item['question']}"
        files = [docs.resolve(path) for path in item["gold"]]
        assert all(files), f"a gold page does not exist: {item['gold']}"
        assert any(pattern.search(plain(file)) for file in files), f"no gold page states: {item['question']}"
