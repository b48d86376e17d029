"""7, continued: answer quality on real documentation that no one here wrote — Debian's
PostgreSQL, git and Debian Reference manuals, served by the test web (tests/testweb/docs.py)
with a BM25 search over them — for the extractive answer and the LLM, beside a naive baseline
from the raw libraries measured in the same run: search, fetch the top five pages with httpx,
trafilatura, paragraphs of up to 600 characters, all-MiniLM, and the best chunk as the answer."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from .harness import Row, Target
from .raw_pipeline import fetch, paragraphs

BENCH = "7 Answer quality"


def docs_module():
    import sys

    from . import ROOT

    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from testweb import docs

    return docs


def naive_answer(web_url: str, question: str, encoder, max_pages: int = 5) -> tuple[str, str]:
    """(the best 600-character chunk of the top pages, its page's URL)."""
    import httpx
    from trafilatura import bare_extraction

    found = httpx.get(f"{web_url}/docs/search", params={"q": question, "format": "json"}, timeout=10).json()
    chunks, urls = [], []
    for url, html in fetch([r["url"] for r in found["results"]][:max_pages]):
        document = bare_extraction(html, url=url, with_metadata=True, include_comments=False)
        for chunk in paragraphs(document.text if document else ""):
            chunks.append(chunk)
            urls.append(url)
    if not chunks:
        return "", ""
    vectors = encoder.encode(chunks, batch_size=16, normalize_embeddings=True)
    query = encoder.encode([question], normalize_embeddings=True)[0]
    best = max(range(len(chunks)), key=lambda i: float(vectors[i] @ query))
    return chunks[best], urls[best]


def naive_figures(web, questions: list[dict]) -> dict:
    from .embedding import raw_sentence_transformer

    from localsearch.plugins import pm
    from localsearch.config import Config

    encoder = raw_sentence_transformer(pm.hook.embedder(config=Config.load()).location)
    correct = gold = 0
    seconds = []
    for item in questions:
        started = time.perf_counter()
        text, url = naive_answer(web.url, item["question"], encoder)
        seconds.append(time.perf_counter() - started)
        correct += bool(item["pattern"].search(text))
        gold += url in item["gold"]
    return {"accuracy": correct / len(questions), "gold_source_cited": gold / len(questions),
            "median_seconds": statistics.median(seconds)}


def run(web, settings, home: Path) -> list[Row]:
    from localsearch_plugins.evaluate import load_questions

    from .quality import answered

    docs = docs_module()
    missing = docs.missing_packages()
    if missing:
        raise RuntimeError(f"install the documentation first: apt-get install {' '.join(missing)}")
    questions = load_questions(str(docs.QA_FILE), web.url)[: settings.qa_limit]

    def figures(name, **overrides):
        return answered(questions, web.url + "/docs", tempfile.mkdtemp(prefix=name, dir=home), **overrides)

    extractive = figures("docs-extractive", llm=False)
    model = figures("docs-llm", llm=True)
    naive = naive_figures(web, questions)
    count = f"{len(questions)} questions over {len(docs.index().pages):,} real pages"
    path = len(web.url)
    found = sum(any(url[path:] == page.path for url in item["gold"] for _, page in docs.search(item["question"], 5))
                for item in questions)
    naive_note = "raw column: the naive baseline, the best 600-character chunk of the top 5 pages (raw libraries)"

    def share(value):
        return None if value is None else 100 * value

    return [
        Row(BENCH, "real pages: a gold page among the search engine's top 5", 100 * found / len(questions), None, "%",
            note="the test web's BM25 search over the manuals, a stand-in for a web search engine: an upper "
                 "bound on what any answer can cite"),
        Row(BENCH, "real pages, extractive answer: accuracy", share(extractive["accuracy"]),
            share(naive["accuracy"]), "%", Target("figure", ">=", 85, "%"), note=f"{count}; {naive_note}"),
        Row(BENCH, "real pages, extractive answer: a gold page cited", share(extractive["gold_source_cited"]),
            share(naive["gold_source_cited"]), "%", Target("figure", ">=", 95, "%"),
            note="raw column: the baseline's chunk is from a gold page"),
        Row(BENCH, "real pages, extractive answer: citation precision", share(extractive["citation_precision"]),
            None, "%", Target("figure", ">=", 90, "%"), note="cited sources that are gold sources"),
        Row(BENCH, "real pages, LLM answer: accuracy", share(model["accuracy"]), share(naive["accuracy"]), "%",
            Target("ratio", ">=", 1.0), note=f"model answers that stood: {model['model_answers']}; {naive_note}"),
        Row(BENCH, "real pages, seconds per question (extractive)", extractive["median_seconds"],
            naive["median_seconds"], "s", Target("figure", "<=", 3.0, "s"),
            note=f"median, warm; stages (median s): {_stages(extractive)}; pages read: median "
                 f"{_kb(extractive['page_chars_median'])}, largest {_kb(extractive['page_chars_max'])} of HTML; "
                 "raw column: the baseline"),
        Row(BENCH, "real pages, first answer after the pages arrive (extractive)",
            extractive["median_after_pages_seconds"], None, "s", Target("figure", "<=", 1.0, "s"),
            note="median, from the end of the fetch stage to the extractive answer event"),
        Row(BENCH, "real pages, the model's first token after the pages arrive (LLM)",
            model["median_token_after_pages_seconds"], None, "s", Target("figure", "<=", 2.5, "s"),
            note="median, from the end of the fetch stage to the model's first token"),
        Row(BENCH, "real pages, seconds per question (LLM)", model["median_seconds"], None, "s",
            Target("figure", "<=", 5.0, "s"),
            note=f"median; the model's first token {_seconds(model['median_first_token_seconds'])} after it "
                 f"was asked; stages (median s): {_stages(model)}"),
        Row(BENCH, "real pages: [n] markers without a supported citation",
            extractive["unbacked_markers"] + model["unbacked_markers"], None, "", Target("figure", "<=", 0),
            note="over both runs' answers"),
        Row(BENCH, "real pages: URLs in answers that were neither fetched nor quoted",
            extractive["fabricated_urls"] + model["fabricated_urls"], None, "", Target("figure", "<=", 0),
            note="over both runs' answers"),
    ]


def _stages(summary: dict) -> str:
    return ", ".join(f"{stage} {value:.2f}" for stage, value in summary["median_stage_seconds"].items()
                     if value is not None)


def _kb(chars) -> str:
    return "n/a" if chars is None else f"{chars / 1000:.0f} K characters"


def _seconds(value) -> str:
    return "n/a" if value is None else f"{value:.2f} s"
