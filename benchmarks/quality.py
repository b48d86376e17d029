"""7. Answer quality: ``localsearch eval`` over the QA set of the test web
(``tests/testweb/qa.jsonl``), for the extractive answer (``--no-llm``), for the LLM with the
default prompt budget, and for the LLM given the top passages nearly whole (a prompt about
three times larger): the prompt-budget target is the default's accuracy at least equal to the
large prompt's, with at most 600 prompt tokens. Then the same over real documentation
(``real_pages.py``), beside a naive baseline."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .harness import Row, Target

BENCH = "7 Answer quality"
LARGE_PROMPT_CHARS = 4800  # about 1,250 prompt tokens: the top passages nearly whole, within n_ctx 2048


def evaluate_with(web, settings, data_dir: str, **overrides) -> dict:
    """``localsearch eval`` of the test web's QA set in this process (see ``answered``)."""
    from localsearch_plugins.evaluate import load_questions

    from .corpus import QA_FILE

    questions = load_questions(str(QA_FILE), web.url)[: settings.qa_limit]
    return answered(questions, web.url, data_dir, **overrides)


def answered(questions: list[dict], searxng_url: str, data_dir: str, **overrides) -> dict:
    """The summary of ``questions`` answered by one Pipeline searching ``searxng_url``."""
    from localsearch.pipeline import Pipeline
    from localsearch_plugins.evaluate import evaluate

    pipeline = Pipeline(engines=["searxng"], searxng_url=searxng_url, data_dir=data_dir, **overrides)
    try:
        return evaluate(lambda question: pipeline.ask(question), questions)["summary"]
    finally:  # its pages still waiting to be stored would compete with the next run's questions
        pipeline.close()


def run(web, settings, home: Path) -> list[Row]:
    from . import real_pages

    return test_web_rows(web, settings, home) + real_pages.run(web, settings, home)


def test_web_rows(web, settings, home: Path) -> list[Row]:
    def figures(name, **overrides):
        return evaluate_with(web, settings, tempfile.mkdtemp(prefix=name, dir=home), **overrides)

    extractive = figures("extractive", llm=False)
    # The bundled model writes no answer by default (bundled_model): it is turned on to measure it.
    default = figures("llm", llm=True, bundled_model=True)
    large = figures("large", llm=True, bundled_model=True, prompt_chars=LARGE_PROMPT_CHARS)
    count = f"{default['questions']} questions"
    large_note = f"raw column: the LLM given the top passages nearly whole (prompt_chars {LARGE_PROMPT_CHARS})"

    def share(summary, key):
        value = summary[key]
        return None if value is None else 100 * value

    return [
        Row(BENCH, "extractive answer (--no-llm): accuracy", share(extractive, "accuracy"), None, "%",
            note=f"{count}; answer matches the expected pattern"),
        Row(BENCH, "extractive answer: short answer right", share(extractive, "short_answer_accuracy"), None, "%",
            note="the expected answer's pattern matches the short answer's text"),
        Row(BENCH, "extractive answer: citation precision", share(extractive, "citation_precision"), None, "%",
            note="cited sources that are gold sources"),
        Row(BENCH, "LLM answer (bundled model on): accuracy", share(default, "accuracy"), share(large, "accuracy"), "%",
            Target("ratio", ">=", 1.0), note=f"{count}; {large_note}; equal or better quality is the target; "
                                             f"model answers that stood (the others fell back to the extractive "
                                             f"one): {default['model_answers']} and {large['model_answers']}"),
        Row(BENCH, "LLM answer: prompt tokens", default["median_prompt_tokens"], large["median_prompt_tokens"],
            "tokens", Target("figure", "<=", 600, "tokens"), note="median per answer"),
        Row(BENCH, "LLM answer: citation precision", share(default, "citation_precision"),
            share(large, "citation_precision"), "%", note="cited sources that are gold sources"),
        Row(BENCH, "LLM answer: cited sentences supported", share(default, "supported_share"),
            share(large, "supported_share"), "%", note="of the model's cited sentences, those a source backs"),
        Row(BENCH, "LLM answer: seconds per question", default["median_seconds"], large["median_seconds"], "s",
            note=f"median; extractive alone: {extractive['median_seconds']:.2f} s"),
    ]
