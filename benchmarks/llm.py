"""1. LLM stage: prefill and generation tokens/s through localsearch's model object vs raw
``llama_cpp.Llama.create_chat_completion(stream=True)`` on the same GGUF, prompt and threads."""

from __future__ import annotations

import time
from functools import cache

from .harness import Row, Target, interleave, median

BENCH = "1 LLM"


@cache
def raw_llama(path: str, n_ctx: int, n_threads: int):
    """A Llama of our own, built as a user of the library would build it."""
    from llama_cpp import Llama

    return Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, verbose=False)


def raw_stream(llama, messages, max_tokens, temperature, seed):
    """The text deltas of a raw streamed chat completion."""
    for chunk in llama.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                              temperature=temperature, seed=seed, stream=True):
        delta = chunk["choices"][0].get("delta", {}).get("content")
        if delta:
            yield delta


def prompt_tokens(llama, messages) -> int:
    """Tokens of ``messages`` rendered with the GGUF's own chat template, as llama.cpp sees them."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:  # no template in the file: count the bare text
        return sum(len(count_tokens(llama, m["content"])) for m in messages)
    text = lambda token: llama._model.token_get_text(token) if token != -1 else ""  # noqa: E731
    formatter = Jinja2ChatFormatter(template=template, eos_token=text(llama.token_eos()),
                                    bos_token=text(llama.token_bos()))
    return len(llama.tokenize(formatter(messages=messages).prompt.encode("utf-8"), add_bos=False, special=True))


def count_tokens(llama, text: str) -> list[int]:
    return llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)


def measure_stream(llama, deltas, n_prompt: int) -> dict:
    """Prefill tokens/s (prompt tokens / time to first token) and generation tokens/s (tokens
    after the first / time after the first) of one streamed answer."""
    started, first, text = time.perf_counter(), None, ""
    for delta in deltas:
        if first is None:
            first = time.perf_counter()
        text += delta
    ended = time.perf_counter()
    if first is None:
        return {"prefill": None, "generation": None, "tokens": 0}
    generated = len(count_tokens(llama, text))
    generation = (generated - 1) / (ended - first) if generated > 1 and ended > first else None
    return {"prefill": n_prompt / (first - started), "generation": generation, "tokens": generated}


def run(config, settings) -> list[Row]:
    from localsearch.plugins import pm

    from .corpus import benchmark_messages

    model = pm.hook.chat_model(config=config)
    ours = model.llama
    raw = raw_llama(str(model.path), model.n_ctx, model.n_threads)
    messages = benchmark_messages(settings.llm_prompt_chars or config.prompt_chars)
    n_prompt = prompt_tokens(ours, messages)
    max_tokens, temperature = settings.llm_max_tokens, config.temperature

    def through_localsearch():
        ours.reset()  # no prefix cache: every run pays the whole prefill
        return measure_stream(ours, model.stream(messages, max_tokens=max_tokens, temperature=temperature), n_prompt)

    def through_llama_cpp():
        raw.reset()
        return measure_stream(raw, raw_stream(raw, messages, max_tokens, temperature, model.seed), n_prompt)

    runs = interleave({"ours": through_localsearch, "raw": through_llama_cpp}, settings.reps)
    note = f"{model.name}, {n_prompt} prompt tokens, {model.n_threads} threads, n_ctx {model.n_ctx}"
    rows = []
    for key, metric in (("prefill", "prefill tokens/s"), ("generation", "generation tokens/s")):
        mine = [r[key] for r in runs["ours"]]
        theirs = [r[key] for r in runs["raw"]]
        generated = median([r["tokens"] for r in runs["ours"]])
        rows.append(Row.paired(BENCH, metric, mine, theirs, "tok/s", Target("ratio", ">=", 0.95),
                               note if key == "prefill" else f"{generated:g} tokens generated per answer"))
    return rows
