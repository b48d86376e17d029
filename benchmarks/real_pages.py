"""7, continued: answer quality on real documentation that no one here wrote, in two sets
served by the test web (tests/testweb/docs.py), each with its own BM25 search: "docs" (Debian's
PostgreSQL, git and Debian Reference manuals) and "httpd" (the Apache HTTP Server manual,
apache2-doc). For each: the extractive answer (the default), the bundled model on, and a naive
baseline from the raw libraries measured in the same run: search, fetch the top five pages with
httpx, trafilatura, paragraphs of up to 600 characters, all-MiniLM, and the best chunk as the
answer."""

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


def naive_answer(search_url: str, question: str, encoder, max_pages: int = 5) -> tuple[str, str]:
    """(the best 600-character chunk of the top pages, its page's URL)."""
    import httpx
    from trafilatura import bare_extraction

    found = httpx.get(f"{search_url}/search", params={"q": question, "format": "json"}, timeout=10).json()
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


def naive_figures(search_url: str, questions: list[dict]) -> dict:
    from .embedding import raw_sentence_transformer

    from localsearch.plugins import pm
    from localsearch.config import Config

    encoder = raw_sentence_transformer(pm.hook.embedder(config=Config.load()).location)
    correct = gold = 0
    seconds = []
    for item in questions:
        started = time.perf_counter()
        text, url = naive_answer(search_url, item["question"], encoder)
        seconds.append(time.perf_counter() - started)
        correct += bool(item["pattern"].search(text))
        gold += url in item["gold"]
    return {"accuracy": correct / len(questions), "gold_source_cited": gold / len(questions),
            "median_seconds": statistics.median(seconds)}


def run(web, settings, home: Path) -> list[Row]:
    docs = docs_module()
    missing = docs.missing_packages()
    if missing:
        raise RuntimeError(f"install the documentation first: apt-get install {' '.join(missing)}")
    return [row for name in docs.SETS for row in set_rows(web, settings, home, docs, name)]


def set_rows(web, settings, home: Path, docs, name: str) -> list[Row]:
    """The rows of one real-page set: the extractive answer, the bundled model on, and the
    naive baseline, each over the set's questions."""
    from localsearch_plugins.evaluate import load_questions

    from .quality import answered

    question_set = docs.SETS[name]
    search_url = web.url + question_set.searxng_path
    questions = load_questions(str(question_set.qa_file), web.url)[: settings.qa_limit]

    def figures(label, **overrides):
        return answered(questions, search_url, tempfile.mkdtemp(prefix=f"{name}-{label}", dir=home), **overrides)

    extractive = figures("extractive", llm=False)
    model = figures("bundled", llm=True, bundled_model=True)  # the bundled model, on for this measurement
    naive = naive_figures(search_url, questions)
    pages = len(docs.index(name).pages)
    count = f"{len(questions)} questions over {pages:,} real pages"
    path = len(web.url)
    found = sum(any(url[path:] == page.path for url in item["gold"] for _, page in docs.search(item["question"], 5, name))
                for item in questions)
    ceiling = 100 * found / len(questions)
    naive_note = "raw column: the naive baseline, the best 600-character chunk of the top 5 pages (raw libraries)"
    label = f"real pages ({name})"
    offered = f"over the {extractive['gold_offered']} questions whose search offered a gold page among the pages read"

    def share(value):
        return None if value is None else 100 * value

    model_part = None
    if model["median_seconds"] is not None and extractive["median_seconds"] is not None:
        model_part = round(model["median_seconds"] - extractive["median_seconds"], 3)
    return [
        Row(BENCH, f"{label}: a gold page among the search engine's top 5", ceiling, None, "%",
            note="the test web's BM25 search over the manuals, a stand-in for a web search engine: an upper "
                 "bound on what any answer can cite"),
        Row(BENCH, f"{label}, extractive answer: accuracy", share(extractive["accuracy"]),
            share(naive["accuracy"]), "%", Target("figure", ">=", 92, "%"), note=f"{count}; {naive_note}"),
        Row(BENCH, f"{label}, short answer right", share(extractive["short_answer_accuracy"]), None, "%",
            Target("figure", ">=", 80, "%"), note="the expected answer's pattern matches the short answer's text"),
        Row(BENCH, f"{label}, sentences per answer", extractive["median_sentences"], None, "",
            Target("figure", "<=", 2), note="median"),
        Row(BENCH, f"{label}, answer sentences holding none of the question's words",
            share(extractive["off_question_sentences"]), None, "%", Target("figure", "<=", 10, "%"),
            note="share of all answer sentences (stemmed content words)"),
        Row(BENCH, f"{label}, answers with an anchor glyph or a section label", extractive["labelled_answers"], None,
            "", Target("figure", "<=", 0), note="¶, §, Permalink, 'Section:', or a citation's heading before its "
                                                  "sentence"),
        Row(BENCH, f"{label}, extractive answer: a gold page cited", share(extractive["gold_cited_when_offered"]),
            share(naive["gold_source_cited"]), "%", Target("figure", ">=", 97, "%"),
            note=f"{offered} (over all questions: {share(extractive['gold_source_cited']):.1f}%; the search's top-5 "
                 f"ceiling: {ceiling:.1f}%); raw column: the baseline's chunk is from a gold page, over all"),
        Row(BENCH, f"{label}, extractive answer: citation precision",
            share(extractive["citation_precision_when_offered"]), None, "%", Target("figure", ">=", 90, "%"),
            note=f"cited sources that are gold sources, {offered}"),
        Row(BENCH, f"{label}, bundled model on: accuracy", share(model["accuracy"]), share(extractive["accuracy"]), "%",
            Target("ratio", ">=", 1.0), note=f"raw column: the extractive answer (the model off, the default); model "
                                             f"answers that stood: {model['model_answers']} of {len(questions)}"),
        Row(BENCH, f"{label}, bundled model on: seconds it adds", model_part, None, "s",
            note="median seconds per question with the model minus without; off by default, so a question pays "
                 "none of it"),
        Row(BENCH, f"{label}, seconds per question (extractive)", extractive["median_seconds"],
            naive["median_seconds"], "s", Target("figure", "<=", 3.0, "s"),
            note=f"median, warm; stages (median s): {_stages(extractive)}; pages read: median "
                 f"{_kb(extractive['page_chars_median'])}, largest {_kb(extractive['page_chars_max'])} of HTML; "
                 "raw column: the baseline"),
        Row(BENCH, f"{label}, first answer after the pages arrive (extractive)",
            extractive["median_after_pages_seconds"], None, "s", Target("figure", "<=", 1.5, "s"),
            note="median, from the end of the fetch stage to the extractive answer event"),
        Row(BENCH, f"{label}: [n] markers without a supported citation",
            extractive["unbacked_markers"] + model["unbacked_markers"], None, "", Target("figure", "<=", 0),
            note="over both runs' answers"),
        Row(BENCH, f"{label}: URLs in answers that were neither fetched nor quoted",
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
