"""Self-checks of the real documentation on the test web (testweb/docs.py): the manuals are
installed and served as they are, each question set's search works over its own pages only, and
each question set is sound (its gold pages exist and state its answers, its questions do not give
them away)."""

from __future__ import annotations

import html
import json
import re
import socket

import httpx
import pytest

from . import TestWeb
from . import docs

# set -> (a page of it, a query, a page that query finds among the top 3, its least number of questions)
SAMPLES = {
    "docs": ("/docs/postgresql/sql-createindex.html", "create index concurrently", "/sql-createindex.html", 60),
    "httpd": ("/docs/apache/mod/core.html", "name-based virtual hosts", "/vhosts/name-based.html", 45),
}


@pytest.fixture(scope="module")
def web():
    with TestWeb() as server:
        yield server


def questions(set_name: str = docs.DEFAULT_SET) -> list[dict]:
    qa_file = docs.SETS[set_name].qa_file
    return [json.loads(line) for line in qa_file.read_text("utf-8").splitlines() if line.strip()]


def plain(file) -> str:
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", file.read_text("utf-8", errors="replace"), flags=re.S | re.I)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def test_every_set_is_checked_here():
    assert set(SAMPLES) == set(docs.SETS) and docs.DEFAULT_SET == "docs" and docs.SETS["docs"].qa_file == docs.QA_FILE
    assert set(docs.PACKAGES) == set(docs.CORPORA) == {c for s in docs.SETS.values() for c in s.corpora}


def test_the_manuals_are_installed():
    assert docs.missing_packages() == [], "apt-get install " + " ".join(docs.missing_packages())
    counts = {corpus: sum(page.corpus == corpus for name in docs.SETS for page in docs.index(name).pages)
              for corpus in docs.CORPORA}
    assert counts["postgresql"] > 1000 and counts["git"] > 100 and counts["debian-reference"] >= 10, counts
    assert counts["apache"] > 200, counts


@pytest.mark.parametrize("set_name", list(docs.SETS))
def test_each_set_indexes_its_own_pages_only(set_name):
    question_set = docs.SETS[set_name]
    pages = docs.index(set_name).pages
    assert pages and {page.corpus for page in pages} == set(question_set.corpora)
    assert docs.index() is docs.index(docs.DEFAULT_SET)  # one index of the default set, not two


@pytest.mark.parametrize("set_name", list(docs.SETS))
def test_pages_are_served_as_installed(web, set_name):
    path = SAMPLES[set_name][0]
    page = next(p for p in docs.index(set_name).pages if p.path == path)
    response = httpx.get(web.url + page.path, timeout=10)
    assert response.status_code == 200 and response.content == page.file.read_bytes()
    assert response.headers["content-type"].startswith("text/html")
    missing = path.rsplit("/", 1)[0] + "/no-such-page.html"
    assert httpx.get(web.url + missing, timeout=10).status_code == 404


@pytest.mark.parametrize("path", ["/docs/git/../../../../etc/passwd", "/docs/git/%2e%2e/%2e%2e/etc/passwd",
                                  "/docs/nothing/x.html", "/docs/git",
                                  "/docs/apache/../../../../../../etc/passwd",
                                  "/docs/apache/../fr/index.html",  # the manual's other languages
                                  "/docs/apache/%2e%2e/%2e%2e/manual/index.html",
                                  "/docs/httpd/mod/core.html"])  # a set's name is no corpus
def test_nothing_outside_the_manuals_is_served(web, path):
    assert docs.resolve(path) is None
    with socket.create_connection((web.host, web.port), timeout=10) as connection:  # no client normalises it
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert connection.makefile("rb").readline().split()[1] == b"404"


@pytest.mark.parametrize("set_name", list(docs.SETS))
def test_the_search_answers_like_searxng(web, set_name):
    question_set = docs.SETS[set_name]
    _, query, expected, _ = SAMPLES[set_name]
    assert docs.set_at(question_set.search_path) == set_name and docs.resolve(question_set.search_path) is None
    assert question_set.searxng_path + "/search" == question_set.search_path
    found = httpx.get(web.url + question_set.search_path, params={"q": query, "format": "json"}, timeout=10).json()
    own = tuple(f"{web.url}/docs/{corpus}/" for corpus in question_set.corpora)
    assert len(found["results"]) == 10 and all(r["url"].startswith(own) for r in found["results"])
    assert any(r["url"].endswith(expected) for r in found["results"][:3])
    # the other sets' searches know nothing of this set's pages
    for other in docs.SETS.values():
        if other is not question_set:
            elsewhere = httpx.get(web.url + other.search_path, params={"q": query, "format": "json"}, timeout=10)
            assert not any(r["url"].startswith(own) for r in elsewhere.json()["results"])


@pytest.mark.parametrize("set_name", list(docs.SETS))
def test_the_question_set_is_sound(set_name):
    items = questions(set_name)
    assert len(items) >= SAMPLES[set_name][3]
    corpora = docs.SETS[set_name].corpora
    for item in items:
        pattern = re.compile(item["answer_pattern"], re.I)
        assert not pattern.search(item["question"]), f"the question gives its answer away: {item['question']}"
        assert item["corpus"] in corpora and item["kind"], item
        assert all(path.startswith(tuple(f"/docs/{c}/" for c in corpora)) for path in item["gold"]), item["gold"]
        files = [docs.resolve(path) for path in item["gold"]]
        assert all(files), f"a gold page does not exist: {item['gold']}"
        unstated = [path for path, file in zip(item["gold"], files) if not pattern.search(plain(file))]
        assert not unstated, f"gold pages that do not state the answer to {item['question']!r}: {unstated}"
