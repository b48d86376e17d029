"""Answering: the extractive answer at once, then the model's streamed answer, checked against
the sources (grounding), then plugins' post-processing, and the checks no plugin can undo."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

from .citations import ground_answer, sanitize_answer_text, why_not_standing
from .extractive import extractive_answer
from .errors import Cancelled
from .events import Run, warning
from .plugins import pm
from .question import Question, analyse
from .prompt import default_messages
from .selection import Selection
from .types import Answer, Citation, Document, Event, Source

__all__ = ["answer", "answer_document"]


def answer_document(answer: Answer, usage: dict | None = None, timings: dict | None = None) -> dict:
    """An answer in the shape of ``ask --json`` (less ``errors``, which the fold adds)."""
    data = answer.to_dict()
    data["answer"] = data.pop("text")
    return {**data, "usage": usage or {}, "timings": dict(timings or {})}


def answer(question: str | Question, conversation: list[dict], sources: list[Source], selection: Selection,
           documents: dict[str, Document], model, model_error: str | None, embed, run: Run) -> Iterator[Event]:
    """Yields ``extractive_answer``, the model's ``answer_delta``s, and the final ``answer``
    (with the ``turn`` a follow-up question continues from)."""
    config, question = run.config, analyse(question)
    if not selection.candidates:
        yield warning("the pages read have no passage to answer from")
        yield Event("answer", {**answer_document(Answer(question=question.text, sources=sources), timings=run.timings),
                               "turn": {"question": question.text, "answer": ""}})
        return
    extractive = extractive_answer(question, sources, selection.candidates)
    extractive.model = model.name if model is not None else None
    yield Event("extractive_answer", answer_document(extractive, timings=run.timings))

    final, usage = extractive, {}
    turn: dict = {"question": question.text}  # what a follow-up question needs of this one
    if config.llm and model is None and model_error:
        yield warning(f"no LLM answer: {model_error}", "answer")
    if model is not None:
        text, usage, messages, looped = yield from _generate(question, conversation, sources, selection, model, run)
        turn["messages"] = messages
        if text.strip():
            turn["reply"] = text
            yield run.start("verify")
            checked = ground_answer(question, text, sources, selection.candidates, selection.candidate_vectors,
                                    lambda texts: embed(texts, "passage"), config.support_threshold,
                                    {url: d.text for url, d in documents.items()})
            checked.model = model.name
            yield run.end("verify", citations=len(checked.citations))
            # On the short leash the model may only say again, in its words, what the best
            # sentence says: on the manuals the default model's answers that rested on the
            # extractive answer's second or third sentence were wrong 6 times out of 11.
            why = why_not_standing(question, checked, extractive.citations[:1] if config.answer_from_evidence else None)
            if looped:  # a model caught in a loop had lost its way before it
                why = "the model repeated itself"
            if not why:
                final = checked
                final.short_answer = extractive.short_answer  # verbatim from the best source sentence
            else:
                # Nothing the model wrote is backed by a source, or what is backed does not
                # answer the question or strays from the best evidence: the cited extract is
                # the honest answer. What the model wrote stays in the turn's reply, not in a
                # warning the reader has to wade through.
                yield warning(f"{why}, so the extractive answer stands", "verify")

    yield from _post_process(final, selection, sources, config)
    turn["answer"] = final.text
    if "reply" not in turn:
        turn.pop("messages", None)  # without the model's reply the prompt cannot be continued
    yield Event("answer", {**answer_document(final, usage, run.timings), "turn": turn})


def _generate(question, conversation, sources, selection: Selection, model, run: Run):
    """Stream the model's answer; returns (text, usage, messages, whether it was cut short in
    a loop). A failing model or prompt plugin costs the model's answer, not the question."""
    config = run.config
    yield run.start("answer")
    try:
        messages = pm.hook.build_prompt(question=question.text, sources=sources, passages=selection.prompt_passages,
                                        conversation=conversation, config=config)
    except Exception as error:  # the built-in prompt stands in for a broken one
        yield warning(f"prompt plugin failed: {error}", "answer")
        messages = None
    messages = messages or default_messages(question.text, sources, selection.prompt_passages, conversation)
    text, started, first_token, looped = "", time.perf_counter(), None, False
    stream = model.stream(messages, max_tokens=config.max_tokens, temperature=config.temperature)
    try:
        for delta in stream:
            run.check()
            if not delta:  # the model is waiting (for another question's generation, say)
                continue
            if first_token is None:
                first_token = round(time.perf_counter() - started, 4)
            text += delta
            yield Event("answer_delta", {"text": delta})
            if _looping(text):
                # A small model that starts repeating itself ("--abbrev-commit --abbrev-commit
                # ...") says nothing more until max_tokens: seconds for nothing.
                looped = True
                break
    except Cancelled:
        raise
    except Exception as error:  # the extractive answer stands in for a failed model
        yield warning(f"the language model failed: {error}", "answer")
        text = ""
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # a cancelled generation frees the model now, not when collected
    usage = dict(getattr(model, "last_usage", None) or {})  # optional: what the model can report
    if first_token is not None:
        usage["first_token"] = first_token
    yield run.end("answer", chars=len(text), **usage)
    return text, usage, messages, looped


def _looping(text: str, repeats: int = 3) -> bool:
    """Whether ``text`` ends with the same piece of 8 to 80 characters ``repeats`` times over."""
    for period in range(8, 81):
        tail = text[-period:]
        if len(text) >= repeats * period and text.endswith(tail * repeats):
            return True
    return False


def _post_process(answer: Answer, selection: Selection, sources: list[Source], config) -> Iterator[Event]:
    """Run ``process_answer`` plugins, then restore what no plugin may change: the sources are
    the pages read, every citation names one of them, and the text carries no URL and no
    marker that is not theirs."""
    numbers = {s.n: s.url for s in sources}
    frozen = [dataclasses.replace(s) for s in sources]
    try:
        pm.hook.process_answer(answer=answer, passages=selection.prompt_passages, config=config)
    except Exception as error:  # a broken post-processor costs its edit, not the answer
        yield warning(f"answer plugin failed: {error}", "verify")
    answer.sources = frozen
    answer.citations = [c for c in answer.citations if isinstance(c, Citation) and numbers.get(c.n) == c.url]
    # Every [n] left in the text is a supported citation, whatever a plugin wrote.
    answer.text = sanitize_answer_text(answer.text, numbers, citations=answer.citations)
