"""6. End to end: a question over 5 fresh pages of the test web, timed to the pages' arrival, the
extractive answer, the first model token and the final answer; cold (a new process, so imports
and model loads count: ``python -m benchmarks.e2e_once``) and warm (the same Pipeline, a new
store so that the pages are fetched and embedded again). Warm runs alternate with the same
answer written by the raw libraries (``raw_pipeline``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from localsearch import hookimpl  # pluggy's marker only: nothing heavy

from . import ROOT
from .harness import Row, Target, median

BENCH = "6 End to end"
# The pipeline stores new pages' passages after answering: the answer does not wait for them.
STAGES = ["load", "plan", "search", "fetch", "extract", "retrieve", "answer", "verify", "index"]


def pipeline_settings(web_url: str, data_dir: str, max_tokens: int | None = None) -> dict:
    # The bundled model stands in for a model the user chose: its first token is what is timed.
    return {"engines": ["searxng"], "searxng_url": web_url, "max_pages": 5, "llm": True, "bundled_model": True,
            "data_dir": data_dir, "search_timeout": 10.0, "fetch_timeout": 10.0, "max_tokens": max_tokens}


def pick_questions(web_url: str, count: int) -> list[str]:
    """Questions of the QA set for which the test web's search returns at least 5 pages."""
    import httpx

    from .corpus import questions

    picked = []
    for question in questions():
        found = httpx.get(f"{web_url}/search", params={"q": question, "format": "json"}, timeout=10).json()
        if len(found["results"]) >= 5:
            picked.append(question)
        if len(picked) == count:
            break
    return picked


class PromptRecorder:
    """A plugin that hands the pipeline the usual model, wrapped to remember the messages it
    was given (to count prompt tokens afterwards)."""

    def __init__(self):
        self.messages: list[list[dict]] = []
        self.model = None

    @hookimpl(tryfirst=True)
    def chat_model(self, config):
        from localsearch_plugins import llama_cpp_answer

        recorder, model = self, llama_cpp_answer.chat_model(config)
        self.model = model

        class Recording:
            name = model.name

            @property
            def last_usage(self):
                return model.last_usage

            def stream(self, messages, **options):
                recorder.messages.append(messages)
                return model.stream(messages, **options)

        return Recording()

    def prompt_tokens(self) -> int | None:
        from .llm import prompt_tokens

        if not self.messages or self.model is None:
            return None
        return prompt_tokens(self.model.llama, self.messages[-1])


def register_recorder() -> PromptRecorder:
    from localsearch.plugins import load_plugins, pm

    load_plugins()
    recorder = PromptRecorder()
    pm.register(recorder, name="benchmark-prompt-recorder")
    return recorder


def record_question(pipeline, question: str, origin: float) -> dict:
    """Run one question; seconds since ``origin`` (a ``time.time()``) of each milestone."""
    marks: dict = {"asked": time.time() - origin, "ends": {}, "errors": []}
    for event in pipeline.ask(question):
        now = time.time() - origin
        if event.type == "stage_end":
            marks["ends"][event.data["stage"]] = now
            if event.data["stage"] == "answer":
                marks["model_first_token"] = event.data.get("first_token")
        elif event.type in ("extractive_answer", "answer", "done") and event.type not in marks:
            marks[event.type] = now
        elif event.type == "answer_delta" and "first_token" not in marks:
            marks["first_token"] = now
        elif event.type == "sources":
            marks["pages_read"] = sum(s["status"] in ("ok", "cached") for s in event.data["sources"])
        elif event.type in ("warning", "error"):
            marks["errors"].append(event.data["message"])
        if "timings" in event.data:
            marks["timings"] = dict(event.data["timings"])
    marks["fetch"] = marks["ends"].get("fetch")
    marks["pages"] = marks["ends"].get("extract")
    return marks


def fresh_store(pipeline, data_dir: Path) -> None:
    """Point the warm pipeline at an empty store, opened before the clock starts: a warm
    process answering about pages it has never seen."""
    pipeline.config = pipeline.config.replace(data_dir=str(data_dir))
    pipeline.store.count()


def run_warm(web, settings, home: Path, questions: list[str]) -> list[dict]:
    """Warm runs of localsearch alternating with the raw-library answer; [{ours, raw}]."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from localsearch.pipeline import Pipeline
    from localsearch.plugins import pm

    from . import raw_pipeline
    from .embedding import raw_sentence_transformer
    from .llm import raw_llama

    recorder = register_recorder()
    try:
        pipeline = Pipeline(**pipeline_settings(web.url, str(home / "warm-0"), settings.e2e_max_tokens))
        record_question(pipeline, questions[0], time.time())  # loads the embedder, store and model
        config = pipeline.config
        llama = raw_llama(str(recorder.model.path), recorder.model.n_ctx, recorder.model.n_threads)
        encoder = raw_sentence_transformer(pipeline.embedder.location)
        client = chromadb.PersistentClient(path=str(home / "raw-chroma"), settings=ChromaSettings(anonymized_telemetry=False))

        def raw(question):
            return raw_pipeline.answer(web.url, question, encoder=encoder, llama=llama, client=client,
                                       max_pages=config.max_pages, top_k=config.top_k, prompt_chars=config.prompt_chars,
                                       max_tokens=config.max_tokens, temperature=config.temperature, seed=config.seed)

        raw(questions[0])  # warm-up of the raw side
        runs = []
        for i, question in enumerate(questions[1:] or questions, 1):
            fresh_store(pipeline, home / f"warm-{i}")
            pair = {}
            for side in (("ours", "raw") if i % 2 else ("raw", "ours")):
                if side == "ours":
                    pair["ours"] = record_question(pipeline, question, time.time())
                    pair["ours"]["prompt_tokens"] = recorder.prompt_tokens()
                else:
                    pair["raw"] = raw(question)
            runs.append(pair)
        return runs, follow_ups(pipeline, recorder, questions, home)
    finally:
        pm.unregister(recorder)


def follow_ups(pipeline, recorder, questions: list[str], home: Path) -> list[dict]:
    """Each question followed up by the next one (the CLI's ``ask --continue``), the follow-up's
    answer timed with llama.cpp's KV cache as the first answer left it, then again with the
    cache cleared: [{"kept": usage, "cleared": usage}]."""
    from localsearch.pipeline import fold_events

    pairs = []
    for i, question in enumerate(questions[:-1]):
        fresh_store(pipeline, home / f"follow-{i}")
        events = list(pipeline.ask(question))
        turn = next(e.data.get("turn") for e in events if e.type == "answer")
        follow_up = questions[i + 1]
        kept = fold_events(pipeline.ask(follow_up, conversation=[turn]))["usage"]
        recorder.model.llama.reset()  # forget the context: the whole prompt is evaluated again
        cleared = fold_events(pipeline.ask(follow_up, conversation=[turn]))["usage"]
        pairs.append({"kept": kept, "cleared": cleared})
    return pairs


def follow_up_rows(pairs: list[dict]) -> list[Row]:
    kept, cleared = [p["kept"] for p in pairs], [p["cleared"] for p in pairs]
    return [
        Row(BENCH, "warm follow-up: prompt tokens", median([u.get("prompt_tokens") for u in kept]), None, "tokens",
            note=f"median of {len(pairs)}; the earlier prompt and reply come first, word for word; "
                 f"{median([u.get('cached_tokens') for u in kept]):.0f} of them reused from the KV cache"),
        Row.paired(BENCH, "warm follow-up: model's first token, KV cache kept vs cleared",
                   [u.get("first_token") for u in kept], [u.get("first_token") for u in cleared], "s",
                   note="raw column: the same follow-up after llama.reset(), so every prompt token is evaluated"),
    ]


def run_cold(web, settings, home: Path, question: str, index: int) -> dict:
    """One question in a new process; seconds since just before the process was started."""
    data_dir = home / f"cold-{index}"
    env = {**os.environ, "LOCALSEARCH_DATA_DIR": str(data_dir),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "benchmarks.e2e_once", "--url", web.url, "--question", question,
               "--data-dir", str(data_dir)]
    if settings.e2e_max_tokens:
        command += ["--max-tokens", str(settings.e2e_max_tokens)]
    origin = time.time()
    done = subprocess.run(command + ["--origin", repr(origin)], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=1800)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"cold run failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(web, settings, home: Path) -> tuple[list[Row], dict]:
    """Rows for the table, and the runs the latency chart draws (``{"cold": .., "warm": ..}``)."""
    questions = pick_questions(web.url, settings.warm_runs + 1)
    warm, follow = run_warm(web, settings, home, questions)
    cold = [run_cold(web, settings, home, questions[i % len(questions)], i) for i in range(settings.cold_runs)]
    rows = warm_rows(warm) + follow_up_rows(follow) + cold_rows(cold)
    chart = {"warm": typical([pair["ours"] for pair in warm]), "cold": typical(cold) if cold else None}
    return rows, chart


def typical(runs: list[dict]) -> dict:
    """The run whose total time is the median one."""
    ordered = sorted(runs, key=lambda r: r.get("done") or float("inf"))
    return ordered[(len(ordered) - 1) // 2]


def _after(runs, key, start_key) -> list[float | None]:
    return [r[key] - r[start_key] if r.get(key) is not None and r.get(start_key) is not None else None for r in runs]


def _relative(runs, key) -> list[float | None]:
    """Seconds from the question (not from the start of the clock) to ``key``."""
    return _after(runs, key, "asked")


def _context(ours: list[dict]) -> str:
    """What the warm runs were: how many, pages read, non-fatal errors."""
    text = (f"median of {len(ours)} warm questions, 5 fresh pages each; "
            f"{median([r.get('pages_read') for r in ours]):g} pages read")
    errors = [e for r in ours for e in r["errors"]]
    if errors:
        first = errors[0] if len(errors[0]) <= 90 else errors[0][:90].rsplit(" ", 1)[0] + " …"
        text += f"; {len(errors)} non-fatal error{'s' if len(errors) > 1 else ''}, e.g. “{first}”"
    return text


def warm_rows(warm: list[dict]) -> list[Row]:
    ours, raw = [p["ours"] for p in warm], [p["raw"] for p in warm]

    def pair(metric, mine, theirs, target=None, note=""):
        unit = "tokens" if "tokens" in metric else "s"
        if theirs:
            return Row.paired(BENCH, metric, mine, theirs, unit, target, note)
        return Row(BENCH, metric, median(mine), None, unit, target, note=note)

    return [
        pair("warm: pages fetched and read (from the question)", _relative(ours, "pages"),
             [r["fetch"] for r in raw], note=_context(ours) + "; raw: pages fetched"),
        pair("warm: extractive answer after pages fetched", _after(ours, "extractive_answer", "fetch"), None,
             Target("figure", "<=", 1.0, "s"), note="pages arrived = end of the fetch stage; the new pages' "
                                                    "passages are stored after the answer"),
        pair("warm: first token after pages fetched", _after(ours, "first_token", "fetch"),
             _after(raw, "first_token", "fetch"), Target("figure", "<=", 2.5, "s"),
             note="raw: the same answer with the raw libraries (which embed and store the pages first), "
                  "no grounding"),
        pair("warm: first token (from the question)", _relative(ours, "first_token"), [r["first_token"] for r in raw]),
        pair("warm: final answer (from the question)", _relative(ours, "answer"), [r["answer"] for r in raw],
             note="localsearch also grounds every sentence; generation lengths differ"),
        pair("warm: done, new pages stored (from the question)", _relative(ours, "done"), [r["answer"] for r in raw],
             note="raw: its final answer (it stored the pages before answering)"),
        pair("warm: prompt tokens", [r.get("prompt_tokens") for r in ours], [r["prompt_tokens"] for r in raw],
             Target("figure", "<=", 600, "tokens"), note="the messages the model got, in the GGUF's chat template"),
    ]


def cold_rows(cold: list[dict]) -> list[Row]:
    if not cold:
        return [Row(BENCH, "cold: not measured (--no-cold)", None, None, "s")]
    n = f"median of {len(cold)} new process{'es' if len(cold) > 1 else ''}, from just before the process starts"
    rows = [("cold: question asked (interpreter start, imports)", "asked"), ("cold: pages fetched and read", "pages"),
            ("cold: extractive answer", "extractive_answer"), ("cold: first token", "first_token"),
            ("cold: final answer", "answer")]
    return [Row(BENCH, metric, median([r.get(key) for r in cold]), None, "s", note=n if i == 0 else "")
            for i, (metric, key) in enumerate(rows)]


def stage_segments(run: dict, cold: bool) -> list[tuple[str, float]]:
    """(label, seconds) of one answer, in order, for the stacked latency bar."""
    timings = run.get("timings", {})
    segments = [("start-up (imports)", run["asked"])] if cold else []
    for stage in STAGES:
        if stage == "answer" and "answer" in timings:
            first = run.get("model_first_token") or 0.0
            segments.append(("answer: to first token", first))
            segments.append(("answer: generation", max(0.0, timings["answer"] - first)))
        elif stage in timings:
            segments.append((stage, timings[stage]))
        if stage == "retrieve" and run.get("extractive_answer") and "retrieve" in run["ends"]:
            segments.append(("extractive answer", max(0.0, run["extractive_answer"] - run["ends"]["retrieve"])))
    total = (run.get("done") or 0.0) - (0.0 if cold else run["asked"])
    segments.append(("other", max(0.0, total - sum(s for _, s in segments))))
    return segments
