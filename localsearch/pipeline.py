"""The question pipeline: plan, search, fetch, extract, chunk, embed, store, answer, verify.

``Pipeline.ask`` yields a stream of ``Event`` objects; every front end only renders that
stream. This module only orders the stages; each lives in a module of its own (``search``,
``documents``, ``selection``, ``answering``) and does its work through plugin hooks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from . import answering, components, documents
from .config import Config
from .errors import ConfigError, LocalsearchError
from .events import Run, fatal, fold_events, warning
from .indexing import Indexer
from .outgoing import recording
from .plugins import load_plugins, pm, search_engines
from .question import Question, analyse
from .search import EngineContext, Stragglers, filtered, search
from .selection import Selection, select
from .text import normalize_url
from .types import Event, Page, SearchResult, Source
from .urlpolicy import UrlPolicy
from .workers import Workers

__all__ = ["Pipeline", "fold_events"]

ENGINE_THREADS = 8  # engines of all questions at once; a hung engine holds one until it returns
FETCH_THREADS = 64  # blocking fetchers of all questions at once
WIDE_NET = 10  # stored passages handed to selection: this many times the candidates it keeps


class Pipeline:
    """One configured pipeline. It owns the threads its questions wait on; the loaded models
    are shared with every pipeline of the process (see ``components``)."""

    def __init__(self, config: Config | None = None, **overrides):
        load_plugins()
        self.config = config or Config.load(overrides)
        # Threads start as work arrives: a roomy pool lets a question ask for more concurrency
        # than the pipeline's own setting (its semaphore holds it to what it asked).
        self.workers = Workers(fetch_threads=max(self.config.fetch_concurrency, FETCH_THREADS),
                               engine_threads=ENGINE_THREADS)
        self.stragglers = Stragglers()
        self._engines: dict | None = None
        self._engine_warnings: list[str] = []
        self._warm = False
        self._lock = threading.Lock()
        self.indexer = Indexer()  # stores the pages questions read, after their answers

    # -- components ----------------------------------------------------------------------
    @property
    def embedder(self):
        return components.embedder(self.config)

    @property
    def store(self):
        return components.store(self.config)

    def embed(self, texts: list[str], kind: str = "passage", config: Config | None = None) -> list[list[float]]:
        return components.embedder(config or self.config).embed(texts, kind) if texts else []

    @property
    def engines(self) -> dict:
        with self._lock:
            if self._engines is None:
                self._engines, self._engine_warnings = search_engines()
            return self._engines

    def warm_up(self, with_model: bool = False, config: Config | None = None) -> None:
        """Load the embedder and open the store now (and the answer model, if asked), so the
        first question does not pay for it."""
        config = config or self.config
        self.embed(["warm up"], "query", config)
        components.store(config).count()
        self._warm = True
        if with_model:
            model, _ = components.chat_model(config)
            if model is not None and hasattr(model, "load"):
                model.load()

    def close(self) -> None:
        """Stop this pipeline's threads (the shared models stay loaded). Pages still waiting
        to be stored are not: call ``indexer.drain()`` first to keep them."""
        self.indexer.close()
        self.workers.close()

    def settings(self, changes: dict | None) -> Config:
        """The pipeline's settings with a request's changes (checked like flags)."""
        return self.config.replace(**changes) if changes else self.config

    # -- a question ----------------------------------------------------------------------
    def ask(self, question: str, *, conversation: list[dict] | None = None, page: Page | None = None,
            focus: str = "", search_web: bool = True, settings: dict | None = None,
            cancel: threading.Event | None = None, generate: bool = True) -> Iterator[Event]:
        """Answer ``question``: yields events, ending with ``done`` (or a fatal ``error``).

        ``page`` is a page the caller already has (the browser's current page): it is source 1,
        and with ``search_web=False`` the only one. ``focus`` is text selected on it.
        ``settings`` change this question's settings only. ``generate=False`` stops after
        retrieval (``localsearch search``).
        """
        run = Run(self.config, cancel)
        self.indexer.question_started()  # storing earlier pages waits until this question is done
        with recording(run.requests):  # what the question sends out, by whatever sends it
            try:
                for failure in self.indexer.take_failures():
                    yield warning(f"a page read earlier could not be stored in the index: {failure}", "index")
                run.config = self.settings(settings)
                conversation = _checked_conversation(conversation)
                question = (question or "").strip()
                if not question:
                    raise LocalsearchError("the question is empty")
                analysed = analyse(question)  # once: selection, the answer and grounding read it
                sources, pages, chosen = yield from self._retrieve(analysed, conversation, page, focus,
                                                                   search_web, run)
                if generate:
                    model, why = components.chat_model(run.config) if run.config.llm else (None, None)
                    yield from answering.answer(analysed, conversation, sources, chosen, pages.documents,
                                                model, why, lambda t, k: self.embed(t, k, run.config), run)
                # The new pages are stored in the background, after this question and between
                # later ones: the next question does not wait for them.
                config = run.config
                self.indexer.submit(pages.new, lambda texts: self.embed(texts, "passage", config),
                                    components.store(config).add_document)
                yield Event("done", {"timings": run.timings, "requests": run.requests.entries()})
            except Exception as error:  # a plugin's (or our) bug ends this question, not the process
                yield fatal(error, run)
            finally:
                self.indexer.question_ended()

    def _from_the_web(self, result: SearchResult) -> bool:
        return any(getattr(self.engines.get(name), "network", True) for name in result.engine.split(","))

    def _retrieve(self, question: Question, conversation: list[dict], page: Page | None, focus: str,
                  search_web: bool, run: Run):
        config = run.config
        names = ["local"] if config.offline else list(config.engines)
        fallbacks = [] if config.offline else [n for n in config.fallback_engines if n not in names]
        if page is None or search_web:
            unknown = [name for name in names + fallbacks if name not in self.engines]
            if unknown or not names:  # checked before any model loads: a typo fails at once
                raise ConfigError(f"unknown search engine {', '.join(unknown) or '(none given)'}; "
                                  f"installed: {', '.join(sorted(self.engines)) or 'none'}")
        store = components.store(config)
        if not self._warm:
            # Loading the embedder and opening the store take seconds once per process; as a
            # stage of their own they do not hide inside whichever stage first needs them.
            yield run.start("load")
            self.warm_up(config=config)
            yield run.end("load", embedder=components.embedder(config).name)

        results: list[SearchResult] = []
        if page is None or search_web:
            queries = yield from _plan(question.text, conversation, run)
            yield run.start("search")
            for message in self._engine_warnings:
                yield warning(message, "search")
            context = EngineContext(config, lambda t, k: self.embed(t, k, config), store.query)
            results, report = search(queries, self.engines, names, context, self.workers.engine_pool, run.cancel,
                                     self.stragglers)
            results, problems = filtered(results, question.text, config)
            for fallback in fallbacks:
                # The next engine while the web gave nothing that passed the filters (the local
                # index answers whatever is asked, so it does not count).
                if any(self._from_the_web(result) for result in results):
                    break
                context = EngineContext(config, lambda t, k: self.embed(t, k, config), store.query)
                more, tried = search(queries, self.engines, [fallback], context, self.workers.engine_pool,
                                     run.cancel, self.stragglers)
                report[fallback] = {**tried[fallback], "fallback": True}
                more, more_problems = filtered(more, question.text, config)
                problems += more_problems
                known = {normalize_url(r.url) for r in results}
                results += [r for r in more if normalize_url(r.url) not in known]
            for name, outcome in report.items():
                if outcome["status"] not in ("ok", "empty"):
                    yield warning(f"search engine {name} ({outcome['status']}): {outcome['error']}", "search")
            for problem in problems:
                yield warning(problem, "search")
            yield Event("search_results", {"results": [r.to_dict() for r in results], "engines": report})
            yield run.end("search", results=len(results))

        urls = [r.url for r in results][: config.max_pages]
        titles = {r.url: r.title for r in results}
        if page is not None:
            urls = [page.url] + [u for u in urls if normalize_url(u) != normalize_url(page.url)]
            titles[page.url] = page.title
        if not urls:
            raise LocalsearchError("no search results for this question" + (" in the local index" if config.offline else ""))

        pages = yield from documents.read(urls, [page] if page is not None else [], store,
                                          UrlPolicy.from_config(config), self.workers, run,
                                          pending=self.indexer.pending)
        sources = [Source(n=i + 1, url=url, title=(pages.documents[url].title if url in pages.documents else "")
                          or titles.get(url, ""), status=pages.statuses[url][0], reason=pages.statuses[url][1])
                   for i, url in enumerate(urls)]
        if not pages.documents:
            raise LocalsearchError("none of the pages found could be read: "
                                   + "; ".join(f"{s.url} ({s.status})" for s in sources))

        yield run.start("retrieve")
        chosen = self._select(question, focus, pages, store, run, urls)
        yield run.end("retrieve", passages=len(chosen.passages), sentences=len(chosen.prompt_passages))
        yield Event("sources", {"sources": [s.to_dict() for s in sources],
                                "passages": [p.to_dict() for p in chosen.passages]})
        return sources, pages, chosen

    def _select(self, question: Question, focus: str, pages: documents.Pages, store, run: Run,
                ranking: list[str]) -> Selection:
        """The best sentences of this question's pages (``ranking``: their URLs in the search's
        order): the nearest passages of the pages already in the store, and the new pages'
        passages picked by words."""
        config = run.config
        query_vector = self.embed([question.text], "query", config)[0]
        new_urls = {document.url for document, _ in pages.new}
        stored_urls = [url for url in pages.documents if url not in new_urls]
        # Cast the net wide: the sentence with the answer is often in a passage that is not
        # among the few nearest as a whole. A store returns all the passages of a few pages at
        # little more cost than the best of them; selection ranks them by words and meaning.
        stored = store.query(query_vector, config.top_k * config.candidate_factor * WIDE_NET,
                             urls=stored_urls) if stored_urls else []
        fresh = [passage for _, chunk in pages.new for passage in chunk]
        return select(question, config, stored, fresh, query_vector, lambda t, k: self.embed(t, k, config), focus,
                      ranking)

    # -- indexing ------------------------------------------------------------------------
    def index(self, urls: list[str], *, refresh: bool = False, allow_files: bool = False,
              settings: dict | None = None, cancel: threading.Event | None = None) -> Iterator[Event]:
        """Fetch, extract and index ``urls``; yields ``page`` events and stage timings.
        ``allow_files``: the user named these (``file://`` URLs are read only then)."""
        run = Run(self.config, cancel)
        try:
            run.config = config = self.settings(settings)
            store = components.store(config)
            policy = UrlPolicy.from_config(config, allow_files=allow_files)
            pages = yield from documents.read(urls, [], store, policy, self.workers, run, refresh=refresh)
            yield run.start("index")
            if pages.new:
                documents.store_passages(pages.new, lambda t, k: self.embed(t, k, config), store, run)
            yield run.end("index", documents=len(pages.new))
            yield Event("done", {"timings": run.timings, "passages": store.count(),
                                 "pages": {u: {"status": s, "reason": r} for u, (s, r) in pages.statuses.items()}})
        except Exception as error:
            yield fatal(error, run)

    def search(self, queries: list[str], engine_names: list[str], config: Config | None = None,
               cancel: threading.Event | None = None) -> tuple[list[SearchResult], dict]:
        """Run the engines alone (fused results and the report by engine)."""
        config = config or self.config
        context = EngineContext(config, lambda t, k: self.embed(t, k, config),
                                lambda v, k: components.store(config).query(v, k))
        return search(queries, self.engines, engine_names, context, self.workers.engine_pool,
                      cancel or threading.Event(), self.stragglers)


def _plan(question: str, conversation: list[dict], run: Run):
    """The search queries for the question (a broken planner costs the plan, not the question)."""
    yield run.start("plan")
    try:
        queries = pm.hook.plan_queries(question=question, conversation=conversation, config=run.config)
    except Exception as error:
        yield warning(f"query planning failed: {error}", "plan")
        queries = None
    if not isinstance(queries, list):
        queries = [question]
    queries = [q for q in queries if isinstance(q, str) and q.strip()] or [question]
    yield run.end("plan", queries=queries)
    return queries


def _checked_conversation(conversation) -> list[dict]:
    """The earlier turns of a conversation (from a client: the CLI's file, a native message),
    checked, so that a malformed one is a clear error rather than a crash in a plugin."""
    if conversation is None:
        return []
    if not isinstance(conversation, list) or not all(
            isinstance(t, dict) and isinstance(t.get("question"), str) and isinstance(t.get("answer", ""), str)
            for t in conversation):
        raise LocalsearchError("conversation must be a list of {\"question\": str, \"answer\": str} objects")
    return conversation
