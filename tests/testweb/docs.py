"""Real documentation on the test web: Debian's HTML manuals, installed with apt, served under
``/docs/<corpus>/<path>`` (as installed, with an HTML content type).

Answer quality is judged on these pages because no one here wrote them: long reference pages
with headings, definition lists, code, tables and footnotes. The pages fall into separate
question SETS, each with its own question file and its own SearXNG-compatible search over its
own pages only: "docs" (PostgreSQL, git, Debian Reference; searched at ``/docs/search``) and
"httpd" (the Apache HTTP Server manual; searched at ``/docs/httpd/search``). A client whose
SearXNG URL is ``<web>/docs`` or ``<web>/docs/httpd`` asks that set's search. The search is
plain BM25 over titles and text, a stand-in for a web search engine (it knows nothing of the
questions).
"""

from __future__ import annotations

import html
import math
import re
import time
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["CORPORA", "PACKAGES", "missing_packages", "DocPage", "index", "search", "resolve", "QA_FILE",
           "QuestionSet", "SETS", "DEFAULT_SET", "set_at"]

QA_FILE = Path(__file__).with_name("docs_qa.jsonl")  # the "docs" set's questions
def _postgresql_folder() -> Path:
    """The manual of the newest PostgreSQL major version installed (Debian 12 ships 15)."""
    folders = sorted(Path("/usr/share/doc").glob("postgresql-doc-*/html"),
                     key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)])
    return folders[-1] if folders else Path("/usr/share/doc/postgresql-doc/html")


# corpus -> (folder the Debian package installs, the pages in it)
CORPORA = {
    "postgresql": (_postgresql_folder(), "*.html"),
    "git": (Path("/usr/share/doc/git-doc"), "**/*.html"),
    "debian-reference": (Path("/usr/share/debian-reference"), "*.en.html"),
    # Debian installs each language of the httpd manual in its own folder, as plain *.html (no
    # *.html.en and no negotiation); a few pages of en/ are in fact the pt-br translation.
    "apache": (Path("/usr/share/doc/apache2-doc/manual/en"), "**/*.html"),
}
PACKAGES = {"postgresql": "postgresql-doc", "git": "git-doc", "debian-reference": "debian-reference-en",
            "apache": "apache2-doc"}


@dataclass(frozen=True)
class QuestionSet:
    qa_file: Path  # one JSON question a line: question, answer_pattern, gold, corpus, kind
    search_path: str  # the test web answers SearXNG's /search there, over this set's pages only
    corpora: tuple[str, ...]

    @property
    def searxng_path(self) -> str:
        """The path to give a client as its SearXNG URL (it appends ``/search``)."""
        return self.search_path.removesuffix("/search")


# The search paths cannot clash with a served page: "httpd" is no corpus, and no page is "search".
SETS = {
    "docs": QuestionSet(QA_FILE, "/docs/search", ("postgresql", "git", "debian-reference")),
    "httpd": QuestionSet(QA_FILE.with_name("httpd_qa.jsonl"), "/docs/httpd/search", ("apache",)),
}
DEFAULT_SET = "docs"
STOPWORDS = set("""a an and are as at be by can do does for from how i if in is it its of on or that the
this to was what when where which who why will with you your""".split())
TITLE_WEIGHT = 3  # a word of the title counts as often as three in the text
K1, B = 1.2, 0.75  # BM25's usual constants


def missing_packages(set_name: str | None = None) -> list[str]:
    """The Debian packages whose documentation is not installed (``apt-get install`` them): of
    every set, or of ``set_name``'s only."""
    names = CORPORA if set_name is None else SETS[set_name].corpora
    return [PACKAGES[name] for name in names if not CORPORA[name][0].is_dir()]


def set_at(path: str) -> str | None:
    """The name of the question set whose search the test web answers at ``path``, or None."""
    return next((name for name, found in SETS.items() if found.search_path == path), None)


@dataclass(frozen=True)
class DocPage:
    corpus: str
    file: Path
    path: str  # the URL path it is served at
    title: str
    length: int  # words, title weight included


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9_][a-z0-9_.-]*[a-z0-9_]|[a-z0-9]", text.lower()) if w not in STOPWORDS]


def _text(markup: str) -> tuple[str, str]:
    title = re.search(r"<title[^>]*>(.*?)</title>", markup, re.S | re.I)
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", markup, flags=re.S | re.I)
    body = html.unescape(re.sub(r"<[^>]+>", " ", body))
    return html.unescape(re.sub(r"<[^>]+>", "", title.group(1))).strip() if title else "", body


@dataclass
class _Index:
    pages: list[DocPage]
    postings: dict[str, list[tuple[int, int]]]  # word -> [(page number, count)]
    average: float
    seconds: float


def index(set_name: str = DEFAULT_SET) -> _Index:
    """Every installed page of a question set, indexed once per process (a few seconds for the
    ~1,400 pages of "docs"). Each set has its own index: its word statistics, its search."""
    return _index(set_name)


@cache
def _index(set_name: str) -> _Index:
    started = time.perf_counter()
    pages: list[DocPage] = []
    postings: dict[str, list[tuple[int, int]]] = {}
    for corpus in SETS[set_name].corpora:
        folder, pattern = CORPORA[corpus]
        if not folder.is_dir():
            continue
        for file in sorted(folder.glob(pattern)):
            title, body = _text(file.read_text(encoding="utf-8", errors="replace"))
            counts = Counter(_words(body))
            for word in _words(title):
                counts[word] += TITLE_WEIGHT
            number = len(pages)
            pages.append(DocPage(corpus, file, f"/docs/{corpus}/{file.relative_to(folder).as_posix()}", title,
                                 sum(counts.values())))
            for word, count in counts.items():
                postings.setdefault(word, []).append((number, count))
    average = sum(p.length for p in pages) / len(pages) if pages else 1.0
    return _Index(pages, postings, average, time.perf_counter() - started)


def search(query: str, limit: int = 10, set_name: str = DEFAULT_SET) -> list[tuple[float, DocPage]]:
    """The best pages of a question set for ``query`` by BM25, best first."""
    found = index(set_name)
    scores: Counter[int] = Counter()
    for word in set(_words(query)):
        hits = found.postings.get(word, [])
        if not hits:
            continue
        rarity = math.log(1 + (len(found.pages) - len(hits) + 0.5) / (len(hits) + 0.5))
        for number, count in hits:
            length = found.pages[number].length / found.average
            scores[number] += rarity * count * (K1 + 1) / (count + K1 * (1 - B + B * length))
    return [(round(score, 4), found.pages[number]) for number, score in scores.most_common(limit)]


def resolve(path: str) -> Path | None:
    """The installed file served at ``path`` (``/docs/<corpus>/<file>``), or None."""
    parts = path.split("/", 3)  # "", "docs", corpus, rest
    if len(parts) < 4 or parts[2] not in CORPORA:
        return None
    folder = CORPORA[parts[2]][0].resolve()
    file = (folder / parts[3]).resolve()
    if not file.is_file() or folder not in file.parents:  # no way out of the folder ("../")
        return None
    return file
