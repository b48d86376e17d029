"""The material the benchmarks run on: the test web's eight articles, as HTML, as documents,
as passages, and as a prompt like the ones the pipeline writes."""

from __future__ import annotations

import json
from functools import cache

from . import ROOT

QA_FILE = ROOT / "tests" / "testweb" / "qa.jsonl"
BASE = "http://testweb.invalid"  # pages that are never fetched still need URLs


@cache
def articles():
    import sys

    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from testweb import articles as served

    return served()


def questions() -> list[str]:
    return [json.loads(line)["question"] for line in QA_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


@cache
def html_pages() -> tuple[tuple[str, str], ...]:
    """(url, decoded HTML) of every article, decoded the way the fetcher decodes them."""
    from localsearch_plugins.http_fetch import decode_html

    pages = []
    for article in articles():
        charset = article.encoding if article.header_charset else None
        html, _ = decode_html(article.body, charset)
        pages.append((BASE + article.path, html))
    return tuple(pages)


def passages(config) -> tuple[str, ...]:
    """Texts of the chunk passages of every article, as the pipeline would index them."""
    from localsearch.plugins import pm
    from localsearch.types import Page

    texts = []
    for url, html in html_pages():
        document = pm.hook.extract_document(page=Page(url=url, status="ok", final_url=url, html=html), config=config)
        texts.extend(p.text for p in pm.hook.chunk_document(document=document, config=config))
    return tuple(texts)


def repeated(texts, count: int) -> list[str]:
    return [texts[i % len(texts)] for i in range(count)]


def benchmark_messages(prompt_chars: int, question: str | None = None) -> list[dict]:
    """A prompt shaped like the pipeline's: five numbered sources with their sentences, taken in
    turn from each, up to ``prompt_chars`` characters, then the question."""
    from localsearch.prompt import default_messages
    from localsearch.text import split_sentences
    from localsearch.types import Passage, Source

    chosen = articles()[:5]
    sources = [Source(n=i + 1, url=BASE + a.path, title=a.title, status="ok") for i, a in enumerate(chosen)]
    spans = [split_sentences(a.text) for a in chosen]
    picked, budget, depth = [], prompt_chars, 0
    while budget > 0 and any(depth < len(s) for s in spans):
        for article, source, sentences in zip(chosen, sources, spans):
            if depth < len(sentences):
                start, end = sentences[depth]
                text = article.text[start:end]
                if len(text) + 1 <= budget:
                    picked.append(Passage(url=source.url, text=text, start=start, end=end, title=article.title))
                    budget -= len(text) + 1
        depth += 1
    return default_messages(question or questions()[0], sources, picked)
