"""Search fan-out, fusion and filtering: every selected engine, each query, under ``search_timeout``;
results merged by reciprocal rank fusion and de-duplicated by URL; then the ``filter_results``
plugins, one after another."""

from __future__ import annotations

import threading
import time
from collections import Counter

from .errors import Cancelled, LocalsearchError, PluginError, SearchEngineError
from .outgoing import carry, record
from .text import is_fetchable_url, normalize_url
from .types import SearchResult
from .workers import ThreadPool

__all__ = ["EngineContext", "Stragglers", "search", "fuse", "RRF_K", "STUCK_LIMIT"]

RRF_K = 60  # reciprocal rank fusion constant, as in Cormack et al.
STUCK_LIMIT = 2  # calls of one engine still running past their time before it is skipped


class Stragglers:
    """Calls of each engine that ran past their time and still hold a thread of the pool.

    A thread cannot be stopped from outside, so an engine that hangs keeps its thread; one
    with ``STUCK_LIMIT`` such calls is skipped (and reported) until one returns, so that it
    cannot take every thread of the pool from the engines that work.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._stuck: Counter[str] = Counter()

    def stuck(self, name: str) -> int:
        with self._lock:
            return self._stuck[name]

    def finished(self, call: dict) -> None:
        with self._lock:
            call["finished"] = True
            if call.get("abandoned"):
                self._stuck[call["name"]] -= 1

    def abandon(self, call: dict) -> None:
        with self._lock:
            if not call.get("finished"):
                call["abandoned"] = True
                self._stuck[call["name"]] += 1


class EngineContext:
    """What an engine may use besides its query: the settings, the embedder and the store.

    It goes dead when the engine's time is up or the question ends: an engine abandoned at its
    timeout can no longer use the shared embedder or store (each call raises ``Cancelled``).
    """

    def __init__(self, config, embed, query_store):
        self.config = config
        self._embed, self._query_store = embed, query_store
        self._ended = threading.Event()

    def embed(self, texts: list[str], kind: str = "query") -> list[list[float]]:
        """Vectors of ``texts`` (``kind`` is "query" or "passage")."""
        self._check()
        return self._embed(texts, kind)

    def query(self, vector: list[float], k: int):
        """The ``k`` stored passages nearest ``vector`` (list of ``Passage``)."""
        self._check()
        return self._query_store(vector, k)

    def end(self) -> None:
        self._ended.set()

    def _check(self) -> None:
        if self._ended.is_set():
            raise Cancelled("the search engine's time is up")


def search(queries: list[str], engines: dict, names: list[str], context: EngineContext,
           pool: ThreadPool, cancel: threading.Event, stragglers: Stragglers) -> tuple[list[SearchResult], dict]:
    """Ask every engine of ``names`` every query on ``pool``; (fused results, report by engine).
    A failing or slow engine is reported (ok, error, timeout), never raised."""
    config = context.config
    report: dict[str, dict] = {}
    jobs = []
    for name in names:
        if name not in engines:
            known = ", ".join(sorted(engines)) or "none"
            report[name] = {"status": "error", "error": f"no such engine (known: {known})", "count": 0}
            continue
        stuck = stragglers.stuck(name)
        if stuck >= STUCK_LIMIT:
            report[name] = {"status": "timeout", "count": 0, "seconds": 0.0,
                            "error": f"skipped: {stuck} of its earlier searches have not returned yet"}
            continue
        report[name] = {"status": "ok", "error": "", "count": 0, "seconds": 0.0}
        jobs.extend({"name": name, "query": query} for query in queries)
    limit = config.results_per_engine

    def run(call: dict) -> tuple[list[SearchResult], float]:
        started = time.perf_counter()
        engine = engines[call["name"]]
        if getattr(engine, "network", True):  # the local index sends nothing out
            endpoint = getattr(engine, "endpoint", None)
            record("search", endpoint(config) if callable(endpoint) else "", engine=call["name"], query=call["query"])
        try:
            hits = engine.search(call["query"], limit, context)
            return _results(call["name"], hits), time.perf_counter() - started
        finally:
            stragglers.finished(call)

    futures = [pool.submit(carry(run), call) for call in jobs]
    deadline = time.monotonic() + config.search_timeout
    try:
        for future in futures:
            while not future.done() and time.monotonic() < deadline:
                if cancel.is_set():
                    raise Cancelled()
                try:
                    future.exception(timeout=min(0.05, max(0.0, deadline - time.monotonic())))
                except TimeoutError:
                    pass
    finally:
        context.end()  # whatever still runs is abandoned: it may not touch the models any more
        for call, future in zip(jobs, futures):
            if not future.cancel() and not future.done():  # queued ones never start; running ones
                stragglers.abandon(call)                    # keep their thread until they return
    ranked: list[list[SearchResult]] = []
    for call, future in zip(jobs, futures):
        name = call["name"]
        entry = report[name]
        if not future.done() or future.cancelled():
            entry.update(status="timeout", error=f"no answer within {config.search_timeout:g} s",
                         seconds=config.search_timeout)
            continue
        error = future.exception()
        if error is not None:
            message = str(error) if isinstance(error, LocalsearchError) else f"{type(error).__name__}: {error}"
            entry.update(status=getattr(error, "status", "error") if isinstance(error, SearchEngineError) else "error",
                         error=message)
            continue
        hits, seconds = future.result()
        entry["seconds"] = round(max(entry["seconds"], seconds), 3)
        entry["count"] += len(hits)
        ranked.append(hits)
    for entry in report.values():  # answered, with nothing: not the same as working
        if entry["status"] == "ok" and entry["count"] == 0:
            entry.update(status="empty", error="no results")
    return fuse(ranked), report


def _results(name: str, hits) -> list[SearchResult]:
    if not isinstance(hits, list) or not all(isinstance(h, SearchResult) for h in hits):
        raise PluginError(f"engine {name} returned {type(hits).__name__}, not a list of SearchResult")
    hits = [hit for hit in hits if is_fetchable_url(hit.url)]  # a malformed URL is dropped, not fatal
    for rank, hit in enumerate(hits, 1):
        hit.engine = hit.engine or name
        hit.rank = hit.rank or rank
    return hits


def fuse(ranked: list[list[SearchResult]]) -> list[SearchResult]:
    """Reciprocal rank fusion of several ranked lists, de-duplicated by normalised URL."""
    merged: dict[str, SearchResult] = {}
    scores: dict[str, float] = {}
    for hits in ranked:
        for rank, hit in enumerate(hits, 1):
            if not hit.url or not hit.url.strip():
                continue
            key = normalize_url(hit.url)
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
            if key not in merged:
                merged[key] = SearchResult(url=hit.url, title=hit.title, snippet=hit.snippet,
                                           engine=hit.engine, rank=hit.rank)
            elif hit.engine not in merged[key].engine.split(","):
                merged[key].engine += "," + hit.engine
    fused = []
    for rank, key in enumerate(sorted(merged, key=lambda k: -scores[k]), 1):
        hit = merged[key]
        hit.rank, hit.score = rank, round(scores[key], 6)
        fused.append(hit)
    return fused


def filtered(results: list[SearchResult], question: str, config) -> tuple[list[SearchResult], list[str]]:
    """``filter_results``: each plugin in turn keeps what it wants of what the previous kept.
    A filter gets copies, and what it returns is matched to the results by URL: one it did not
    receive (or whose URL it changed) is ignored, and a filter that raises is skipped (the problems)."""
    import dataclasses

    problems = []
    from .plugins import pm

    for implementation in reversed(pm.hook.filter_results.get_hookimpls()):
        arguments = {"results": [dataclasses.replace(r) for r in results], "question": question, "config": config}
        try:
            kept = implementation.function(*[arguments[name] for name in implementation.argnames])
        except Exception as error:  # a filter's bug costs its filtering, not the question
            problems.append(f"plugin {implementation.plugin_name!r}: filter_results failed "
                            f"({type(error).__name__}: {error}); results left as they were")
            continue
        if kept is None:
            continue
        if not isinstance(kept, (list, tuple)):
            problems.append(f"plugin {implementation.plugin_name!r}: filter_results returned "
                            f"{type(kept).__name__}, not a list; results left as they were")
            continue
        given = {normalize_url(result.url): result for result in results}
        chosen: dict[str, SearchResult] = {}
        strays = 0
        for result in kept:
            key = normalize_url(getattr(result, "url", "") or "")
            if key in given:
                chosen.setdefault(key, given[key])
            else:
                strays += 1
        if strays:
            problems.append(f"plugin {implementation.plugin_name!r}: filter_results returned {strays} result"
                            f"{'s' if strays != 1 else ''} it was not given; ignored")
        results = list(chosen.values())
    return results, problems
