"""``localsearch eval FILE.jsonl``: answer accuracy, citation precision, support and latency
over a set of questions with expected answers and gold sources.

Each line of the file: ``{"question": ..., "answer_pattern": "<regex>", "gold": [urls]}``;
gold entries that are paths (``/articles/x``) are resolved against ``--base-url``.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from urllib.parse import urljoin

import click

from localsearch import hookimpl
from localsearch.errors import LocalsearchError
from localsearch.question import analyse
from localsearch.text import CITATION_RE, citation_numbers, keywords, split_sentences, without_code

__all__ = ["load_questions", "evaluate"]


def load_questions(path: str, base_url: str = "") -> list[dict]:
    """Read and check the question file; a bad line is a clear error naming its number."""
    questions = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                question, pattern = item["question"], re.compile(item["answer_pattern"], re.I)
                gold = [urljoin(base_url, url) if base_url else url for url in item.get("gold", [])]
            except (ValueError, KeyError, TypeError, re.error) as error:
                raise LocalsearchError(f"{path} line {number}: not a question line ({error})") from None
            questions.append({"question": question, "pattern": pattern, "gold": gold})
    if not questions:
        raise LocalsearchError(f"{path} has no questions")
    return questions


def _unbacked_markers(result: dict) -> int:
    """``[n]`` markers in the answer's prose that no supported citation of source n backs."""
    backed = {c["n"] for c in result.get("citations", []) if c["supported"]}
    prose = without_code(result.get("answer", ""))
    return sum(n not in backed for group in CITATION_RE.findall(prose) for n in citation_numbers(group))


def _fabricated_urls(result: dict) -> int:
    """URLs in the answer that are neither a source nor in a quote of the page it cites."""
    known = {s["url"] for s in result.get("sources", [])}
    quoted = " ".join(c["quote"] for c in result.get("citations", []))
    return sum(url.rstrip(".,;:!?)") not in known and url not in quoted
               for url in re.findall(r"https?://[^\s<>\[\]()`\"']+", result.get("answer", "")))


def score(item: dict, result: dict, seconds: float, stamps: dict | None = None) -> dict:
    """One question's figures from its folded ``ask`` result (and, given ``stamps``, when the
    pages arrived, when the first answer came, and the pages' sizes)."""
    cited = list(dict.fromkeys(c["url"] for c in result.get("citations", [])))
    stamps = stamps or {}
    question = analyse(item["question"])
    short = (result.get("short_answer") or {}).get("text", "")
    prose = CITATION_RE.sub("", result.get("answer", ""))
    sentences = [prose[a:b] for a, b in split_sentences(prose) if re.search(r"\w", prose[a:b])]
    return {
        "question": item["question"],
        "answer": result.get("answer", ""),
        # What the reader sees: the short answer, then the sentences.
        "correct": bool(item["pattern"].search(f"{short}\n{result.get('answer', '')}")),
        "short_answer": short,
        "short_correct": bool(short) and bool(item["pattern"].search(short)),
        "sentences": len(sentences),
        "off_question": sum(not (keywords(sentence) & question.terms) for sentence in sentences),
        "labelled": labelled(result),
        "gold_offered": any(s["url"] in item["gold"] and s.get("status") in ("ok", "cached")
                            for s in result.get("sources", [])),
        "cited": len(cited),
        "cited_gold": sum(url in item["gold"] for url in cited),
        "gold_cited": any(url in item["gold"] for url in cited),
        "citations": len(result.get("citations", [])),
        "supported": sum(c["supported"] for c in result.get("citations", [])),
        "extractive": result.get("extractive", True),
        "error": result.get("fatal"),
        "seconds": round(seconds, 3),
        "prompt_tokens": result.get("usage", {}).get("prompt_tokens"),
        "first_token": result.get("usage", {}).get("first_token"),
        "unbacked_markers": _unbacked_markers(result),
        "fabricated_urls": _fabricated_urls(result),
        "stages": dict(result.get("timings", {})),
        "after_pages": stamps.get("after_pages"),  # pages arrived -> the first answer event
        "token_after_pages": stamps.get("token_after_pages"),  # pages arrived -> the model's first token
        "page_sizes": stamps.get("page_sizes", []),  # characters of HTML of each page read
    }


# What a page's furniture leaves in an answer: anchor glyphs, and a label of its section.
_GLYPHS = re.compile(r"[¶§🔗]|\bPermalink\b|^\s*Section\s*:", re.I | re.M)


def labelled(result: dict) -> bool:
    """Whether the answer's text carries an anchor glyph or a section label (a citation's
    heading written before its sentence, "port (integer): ...")."""
    text = without_code(result.get("answer", ""))
    if _GLYPHS.search(text):
        return True
    labels = {c["section"].rsplit(" › ", 1)[-1].strip() for c in result.get("citations", []) if c.get("section")}
    return any(f"{label}:" in text for label in labels if label)


def summarize(rows: list[dict]) -> dict:
    cited = sum(r["cited"] for r in rows)
    citations = sum(r["citations"] for r in rows)
    seconds = sorted(r["seconds"] for r in rows)
    offered = [r for r in rows if r["gold_offered"]]
    offered_cited = sum(r["cited"] for r in offered)
    sentences = sum(r["sentences"] for r in rows)
    return {
        "questions": len(rows),
        "accuracy": round(sum(r["correct"] for r in rows) / len(rows), 3),
        "short_answer_accuracy": round(sum(r["short_correct"] for r in rows) / len(rows), 3),
        "median_sentences": _median([r["sentences"] for r in rows]),
        "off_question_sentences": round(sum(r["off_question"] for r in rows) / sentences, 3) if sentences else None,
        "labelled_answers": sum(r["labelled"] for r in rows),
        # Over the questions whose search offered a gold page among the pages read: what the
        # answer can be asked to cite (the search's own ceiling is reported beside it).
        "gold_offered": len(offered),
        "gold_cited_when_offered": round(sum(r["gold_cited"] for r in offered) / len(offered), 3) if offered else None,
        "citation_precision_when_offered": round(sum(r["cited_gold"] for r in offered) / offered_cited, 3)
        if offered_cited else None,
        "citation_precision": round(sum(r["cited_gold"] for r in rows) / cited, 3) if cited else None,
        "gold_source_cited": round(sum(r["gold_cited"] for r in rows) / len(rows), 3),
        "supported_share": round(sum(r["supported"] for r in rows) / citations, 3) if citations else None,
        "model_answers": sum(not r["extractive"] for r in rows),
        "errors": sum(bool(r["error"]) for r in rows),
        "median_seconds": round(statistics.median(seconds), 3),
        "median_prompt_tokens": _median([r["prompt_tokens"] for r in rows]),
        "median_first_token_seconds": _median([r["first_token"] for r in rows]),
        "p90_seconds": round(seconds[min(len(seconds) - 1, int(0.9 * len(seconds)))], 3),
        "median_after_pages_seconds": _median([r["after_pages"] for r in rows]),
        "median_token_after_pages_seconds": _median([r["token_after_pages"] for r in rows]),
        "median_stage_seconds": {stage: _median([r["stages"].get(stage) for r in rows])
                                 for stage in dict.fromkeys(s for r in rows for s in r["stages"])},
        "page_chars_median": _median([size for r in rows for size in r["page_sizes"]]),
        "page_chars_max": max((size for r in rows for size in r["page_sizes"]), default=None),
        "unbacked_markers": sum(r["unbacked_markers"] for r in rows),
        "fabricated_urls": sum(r["fabricated_urls"] for r in rows),
    }


def _median(values):
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def _stamps(stamped: list) -> dict:
    fetched = next((t for t, e in stamped if e.type == "stage_end" and e.data.get("stage") == "fetch"), None)
    first = next((t for t, e in stamped if e.type in ("extractive_answer", "answer")), None)
    token = next((t for t, e in stamped if e.type == "answer_delta"), None)

    def after_pages(stamp):
        return round(stamp - fetched, 3) if fetched is not None and stamp is not None else None

    return {"after_pages": after_pages(first), "token_after_pages": after_pages(token),
            "page_sizes": [e.data["size"] for _, e in stamped if e.type == "page" and "size" in e.data]}


def evaluate(ask, questions: list[dict], progress=None) -> dict:
    """Ask every question (``ask(question)`` returns its events); rows and the summary."""
    from localsearch.events import fold_events

    rows = []
    for item in questions:
        started = time.perf_counter()
        stamped = [(time.perf_counter(), event) for event in ask(item["question"])]
        result = fold_events(event for _, event in stamped)
        ended = stamped[-1][0] if stamped else time.perf_counter()  # the last event, not what follows it
        rows.append(score(item, result, ended - started, _stamps(stamped)))
        if progress:
            progress(rows[-1])
    return {"summary": summarize(rows), "questions": rows}


def _settle(run_request, timeout: float = 600.0) -> None:
    """Wait until the pages read so far are stored (by this process or the server)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = next((e.data for e in run_request("status")[1] if e.type == "status"), {})
        if not status.get("indexing"):
            return
        time.sleep(0.2)


@hookimpl(trylast=True)
def register_commands(cli):
    from localsearch.cli import retrieval_options, retrieval_settings, run_request

    @cli.command(name="eval")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    @retrieval_options
    @click.option("--base-url", default="", help="Resolve gold paths like /articles/x against this URL.")
    @click.option("--no-llm", is_flag=True, help="Evaluate the extractive answer only.")
    @click.option("--limit", type=click.IntRange(1), help="Only the first N questions.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON: the summary and every question.")
    @click.option("--settle", is_flag=True, help="Let each question's pages be stored before the next one "
                  "(as while a person reads the answer); without it, questions follow at once.")
    def evaluate_command(path, engines, searxng_url, max_pages, top_k, offline, base_url, no_llm, limit, as_json,
                         settle):
        """Measure answers against FILE.jsonl: accuracy, citation precision, support, latency."""
        questions = load_questions(path, base_url or searxng_url or "")[:limit]
        settings = retrieval_settings(engines, searxng_url, max_pages, top_k, offline, llm=False if no_llm else None)

        def ask(question):  # without a server, one session in this process serves every question
            yield from run_request("ask", settings, question=question)[1]
            if settle:
                _settle(run_request)

        def progress(row):
            if not as_json:
                mark = click.style("✓", fg="green") if row["correct"] else click.style("✗", fg="red")
                click.echo(f"{mark} {row['seconds']:6.2f}s  {row['question']}", err=True)

        report = evaluate(ask, questions, progress)
        if as_json:
            click.echo(json.dumps(report, indent=2, ensure_ascii=False))
            return
        for name, value in report["summary"].items():
            click.echo(f"{name:<20} {value}")
