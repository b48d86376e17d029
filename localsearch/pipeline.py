"""The question pipeline: plan, search, fetch, extract, chunk, embed, store, answer, verify.

``Pipeline.ask`` yields a stream of ``Event`` objects; every front end (CLI, ``--json``, the
native-messaging host) only renders that stream. Each stage is a hook, so plugins do the work.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import inspect
import logging
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field

from .citations import (asked_for, extractive_answer, gives, ground_answer, sanitize_answer_text,
                        why_not_standing)
from .config import Config
from .errors import Cancelled, ConfigError, LocalsearchError, PluginError
from .plugins import load_plugins, pm
from .prompt import default_messages
from .text import dot, is_fetchable_url, keyword_scores, normalize_url, split_sentences
from .types import Answer, Citation, Document, Event, FetchStatus, Page, Passage, SearchResult, Source

__all__ = ["Pipeline", "Retrieval", "fold_events", "RRF_K"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

RRF_K = 60  # reciprocal rank fusion constant, as in Cormack et al.


@dataclass
class Retrieval:
    """What retrieval found for a question: numbered sources and scored candidate sentences."""

    sources: list[Source] = field(default_factory=list)
    documents: dict[str, Document] = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)
    candidates: list[Passage] = field(default_factory=list)
    candidate_vectors: list[list[float]] = field(default_factory=list)
    prompt_passages: list[Passage] = field(default_factory=list)
    # Pages read for this question but not yet in the store, with their passages: they are
    # embedded and stored after the answer, so that the answer need not wait for it.
    unindexed: list[tuple[Document, list[Passage]]] = field(default_factory=list)


class _Run:
    """Per-question bookkeeping: stage timings and the cancel flag."""

    def __init__(self, cancel: threading.Event | None):
        self.cancel = cancel
        self.timings: dict[str, float] = {}
        self._started: dict[str, float] = {}

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()

    def start(self, stage: str) -> Event:
        self.check()
        self._started[stage] = time.perf_counter()
        return Event("stage_start", {"stage": stage})

    def end(self, stage: str, **detail) -> Event:
        seconds = time.perf_counter() - self._started[stage]
        self.timings[stage] = round(self.timings.get(stage, 0.0) + seconds, 4)
        return Event("stage_end", {"stage": stage, "seconds": round(seconds, 4), **detail})


class Pipeline:
    """One configured pipeline; keeps its embedder, store and model loaded between questions."""

    def __init__(self, config: Config | None = None, **overrides):
        load_plugins()
        self.config = config or Config.load(overrides)
        self._embedder = None
        self._store = None
        self._chat_model = None
        self._chat_model_error: str | None = None
        self._engines = None
        self._loaded = False

    # -- components, created on first use ------------------------------------------------
    @property
    def embedder(self):
        if self._embedder is None:
            self._embedder = pm.hook.embedder(config=self.config)
            if self._embedder is None:
                raise PluginError("no plugin provides an embedder (is localsearch installed with its built-in plugins?)")
        return self._embedder

    @property
    def store(self):
        if self._store is None:
            self._store = pm.hook.vector_store(config=self.config, embedder_name=self.embedder.name)
            if self._store is None:
                raise PluginError("no plugin provides a vector store")
        return self._store

    def chat_model(self):
        """The answer-writing model, or None (with the reason kept in ``chat_model_error``)."""
        if self._chat_model is None and self._chat_model_error is None:
            try:
                self._chat_model = pm.hook.chat_model(config=self.config)
                if self._chat_model is None:
                    self._chat_model_error = "no language model plugin is installed"
            except LocalsearchError as error:
                self._chat_model_error = str(error)
            except Exception as error:  # a model that fails to load must not sink the question
                self._chat_model_error = f"the language model failed to load: {error}"
        return self._chat_model

    @property
    def chat_model_error(self) -> str | None:
        return self._chat_model_error

    @property
    def engines(self) -> dict:
        if self._engines is None:
            engines: dict = {}

            def register(engine) -> None:
                if engine.name in engines:
                    raise PluginError(f"two plugins register a search engine named {engine.name!r}")
                engines[engine.name] = engine

            pm.hook.register_search_engines(register=register)
            self._engines = engines
        return self._engines

    def warm_up(self, with_model: bool = False) -> None:
        """Load the embedder and open the store now (and the answer model, if asked), so the
        first question does not pay for it."""
        self.embed(["warm up"], "query")
        self.store.count()
        self._loaded = True
        if with_model:
            model = self.chat_model()
            if model is not None and hasattr(model, "load"):
                model.load()

    def embed(self, texts: list[str], kind: str = "passage") -> list[list[float]]:
        if not texts:
            return []
        return self.embedder.embed(texts, kind)

    # -- the question --------------------------------------------------------------------
    def ask(self, question: str, *, conversation: list[dict] | None = None,
            page: Page | None = None, cancel: threading.Event | None = None,
            generate: bool = True) -> Iterator[Event]:
        """Answer ``question``: yields events, ending with ``answer`` and ``done`` (or a fatal
        ``error``). ``generate=False`` stops after retrieval (``localsearch search``)."""
        run = _Run(cancel)
        try:
            conversation = _checked_conversation(conversation)
            retrieval = yield from self._retrieve(question, conversation, page, run)
            if generate:
                yield from self._answer(question, conversation, retrieval, run)
            if retrieval.unindexed:
                yield run.start("index")
                self._store_passages(retrieval.unindexed, run)
                yield run.end("index", documents=len(retrieval.unindexed))
            yield Event("done", {"timings": run.timings})
        except LocalsearchError as error:
            kind = "cancelled" if isinstance(error, Cancelled) else type(error).__name__
            yield Event("error", {"message": str(error), "fatal": True, "kind": kind,
                                  "timings": run.timings})
        except Exception as error:  # a plugin's (or our) bug ends this question, not the process
            yield _internal_error(error, run)

    def _retrieve(self, question, conversation, page, run) -> Iterator[Event]:
        question = (question or "").strip()
        if not question:
            raise LocalsearchError("the question is empty")
        config = self.config
        engine_names = ["local"] if config.offline else list(config.engines)
        unknown = [name for name in engine_names if name not in self.engines]
        if unknown or not engine_names:  # checked before any model loads: a typo fails at once
            raise ConfigError(f"unknown search engine {', '.join(unknown) or '(none given)'}; "
                              f"installed: {', '.join(sorted(self.engines)) or 'none'}")

        if not self._loaded:
            # Loading the embedder and opening the store take seconds once per process; as a
            # stage of their own they do not hide inside whichever stage first needs them.
            yield run.start("load")
            self.warm_up()
            yield run.end("load", embedder=self.embedder.name)

        yield run.start("plan")
        try:
            queries = pm.hook.plan_queries(question=question, conversation=conversation or [], config=config)
        except Exception as error:  # a broken planner costs the plan, not the question
            yield Event("error", {"message": f"query planning failed: {error}", "fatal": False, "stage": "plan"})
            queries = None
        if not isinstance(queries, list):
            queries = [question]
        queries = [q for q in queries if isinstance(q, str) and q.strip()] or [question]
        yield run.end("plan", queries=queries)

        yield run.start("search")
        results, engine_report = self.search(queries, engine_names)
        for name, report in engine_report.items():
            if report["status"] != "ok":
                yield Event("error", {"message": f"search engine {name}: {report['error']}",
                                      "fatal": False, "stage": "search"})
        yield Event("search_results", {"results": [r.to_dict() for r in results],
                                       "engines": engine_report})
        yield run.end("search", results=len(results))

        urls = [r.url for r in results][: config.max_pages]
        titles = {r.url: r.title for r in results}
        if page is not None:
            urls = [page.url] + [u for u in urls if normalize_url(u) != normalize_url(page.url)]
        if not urls:
            raise LocalsearchError("no search results for this question"
                                   + (" in the local index" if config.offline else ""))

        documents, statuses, unindexed = yield from self._documents(urls, run, page, defer_index=True)
        sources = [Source(n=i + 1, url=url, title=(documents[url].title if url in documents else "")
                          or titles.get(url, ""), status=statuses[url][0], reason=statuses[url][1])
                   for i, url in enumerate(urls)]
        retrieval = Retrieval(sources=sources, documents=documents, unindexed=unindexed)
        if not documents:
            raise LocalsearchError("none of the pages found could be read: "
                                   + "; ".join(f"{s.url} ({s.status})" for s in sources))

        yield run.start("retrieve")
        self._select(question, retrieval)
        yield run.end("retrieve", passages=len(retrieval.passages), sentences=len(retrieval.prompt_passages))
        yield Event("sources", {"sources": [s.to_dict() for s in sources],
                                "passages": [p.to_dict() for p in retrieval.passages]})
        return retrieval

    def search(self, queries: list[str], engine_names: list[str]) -> tuple[list[SearchResult], dict]:
        """Run the engines concurrently, each under ``search_timeout``; merge with reciprocal
        rank fusion. A failing engine is reported in the second value, never raised."""
        config = self.config
        report: dict[str, dict] = {}
        jobs = []
        for name in engine_names:
            if name not in self.engines:
                known = ", ".join(sorted(self.engines)) or "none"
                report[name] = {"status": "error", "error": f"no such engine (known: {known})", "count": 0}
                continue
            for query in queries:
                jobs.append((name, query))
        finished: dict[int, tuple[str, object, float]] = {}

        def work(i: int, name: str, query: str) -> None:
            started = time.perf_counter()
            try:
                outcome = ("ok", self._run_engine(name, query))
            except LocalsearchError as error:
                outcome = ("error", str(error))
            except Exception as error:  # one broken engine must not sink the question
                outcome = ("error", f"{type(error).__name__}: {error}")
            finished[i] = (*outcome, time.perf_counter() - started)

        # Daemon threads: an engine that hangs is abandoned at its timeout and never holds up
        # the answer, nor the exit of the process.
        threads = [threading.Thread(target=work, args=(i, name, query), daemon=True)
                   for i, (name, query) in enumerate(jobs)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + config.search_timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        done = dict(finished)
        ranked: list[tuple[str, list[SearchResult]]] = []
        for i, (name, query) in enumerate(jobs):
            entry = report.setdefault(name, {"status": "ok", "error": "", "count": 0, "seconds": 0.0})
            if i not in done:
                entry.update(status="timeout", error=f"no answer within {config.search_timeout:g} s",
                             seconds=config.search_timeout)
                continue
            status, value, seconds = done[i]
            entry["seconds"] = round(max(entry["seconds"], seconds), 3)
            if status == "error":
                entry.update(status="error", error=value)
                continue
            entry["count"] += len(value)
            ranked.append((name, value))
        return _fuse(ranked), report

    def _run_engine(self, name: str, query: str) -> list[SearchResult]:
        hits = self.engines[name].search(query, self.config.results_per_engine, self)
        if not isinstance(hits, list) or not all(isinstance(h, SearchResult) for h in hits):
            raise PluginError(f"engine {name} returned {type(hits).__name__}, not a list of SearchResult")
        hits = [hit for hit in hits if is_fetchable_url(hit.url)]  # a malformed URL is dropped, not fatal
        for rank, hit in enumerate(hits, 1):
            hit.engine = hit.engine or name
            hit.rank = hit.rank or rank
        return hits

    # -- fetch, extract, index -----------------------------------------------------------
    def index(self, urls: list[str], *, refresh: bool = False,
              cancel: threading.Event | None = None) -> Iterator[Event]:
        """Fetch, extract and index ``urls``; yields ``page`` events and stage timings."""
        run = _Run(cancel)
        try:
            _, statuses, _ = yield from self._documents(urls, run, None, refresh=refresh)
            yield Event("done", {"timings": run.timings, "passages": self.store.count(),
                                 "pages": {u: {"status": s, "reason": r} for u, (s, r) in statuses.items()}})
        except LocalsearchError as error:
            yield Event("error", {"message": str(error), "fatal": True, "timings": run.timings})
        except Exception as error:  # a plugin's (or our) bug ends this run, not the process
            yield _internal_error(error, run)

    def _documents(self, urls, run, page, refresh=False, defer_index=False):
        """Documents for ``urls``: from the page cache when fresh, else fetched, extracted and
        indexed. Returns ({url: Document}, {url: (status, reason)}, [(Document, passages)]):
        the last are the new pages left to index when ``defer_index``, else []."""
        config, now = self.config, time.time()
        documents: dict[str, Document] = {}
        statuses: dict[str, tuple[str, str]] = {}
        to_fetch = []
        # Looked up once: the cached copy decides whether to fetch, stands in if fetching
        # again fails, and its hash tells whether fetched text needs embedding again.
        known: dict[str, Document | None] = {}
        for url in urls:
            if page is not None and url == page.url:
                continue
            cached = known[url] = self.store.get_document(url)
            fresh = not refresh and cached is not None and (
                config.offline or now - cached.fetched_at < config.freshness_hours * 3600)
            if fresh:
                documents[url] = cached
                statuses[url] = (FetchStatus.CACHED, "")
                yield Event("page", {"url": url, "status": FetchStatus.CACHED, "title": cached.title})
            elif config.offline:
                statuses[url] = (FetchStatus.ERROR, "not in the local index (offline)")
                yield Event("page", {"url": url, "status": FetchStatus.ERROR, "reason": statuses[url][1]})
            else:
                to_fetch.append(url)

        yield run.start("fetch")
        pages = self._fetch_all(to_fetch, run) if to_fetch else []
        if page is not None:
            pages.insert(0, page)
        for fetched in pages:
            if fetched.ok:
                continue
            if known.get(fetched.url) is not None:
                documents[fetched.url] = known[fetched.url]
                statuses[fetched.url] = (FetchStatus.CACHED, f"older copy; fetching again: {fetched.status} {fetched.reason}".strip())
            else:
                statuses[fetched.url] = (fetched.status, fetched.reason)
            yield Event("page", {"url": fetched.url, "status": statuses[fetched.url][0],
                                 "reason": statuses[fetched.url][1], "seconds": fetched.seconds})
        yield run.end("fetch", pages=len(to_fetch))

        yield run.start("extract")
        extracted = []
        for fetched in pages:
            if not fetched.ok:
                continue
            run.check()
            document, reason = self._extract(fetched)
            if document is None:
                statuses[fetched.url] = (FetchStatus.NO_CONTENT, reason)
                yield Event("page", {"url": fetched.url, "status": FetchStatus.NO_CONTENT, "reason": reason})
                continue
            document.url = fetched.url  # the URL asked for stays the key, whatever redirects said
            document.fetched_at = now
            document.content_hash = hashlib.sha256(document.text.encode("utf-8")).hexdigest()
            extracted.append(document)
        yield run.end("extract", documents=len(extracted))

        if not defer_index:
            yield run.start("index")
        new = []
        for document in extracted:
            cached = known[document.url] if document.url in known else self.store.get_document(document.url)
            if cached is not None and cached.content_hash == document.content_hash:
                self.store.touch(document.url, now)  # same text: no need to embed it again
            else:
                new.append(document)
            documents[document.url] = document
            statuses[document.url] = (FetchStatus.OK, "")
            yield Event("page", {"url": document.url, "status": FetchStatus.OK, "title": document.title,
                                 "chars": len(document.text)})
        chunked = self._chunk(new)
        if defer_index:
            return documents, statuses, chunked
        if chunked:
            self._store_passages(chunked, run)
        yield run.end("index", documents=len(new))
        return documents, statuses, []

    def _fetch_all(self, urls: list[str], run: _Run) -> list[Page]:
        limit = asyncio.Semaphore(self.config.fetch_concurrency)

        async def one(url: str) -> Page:
            async with limit:
                started = time.perf_counter()
                try:
                    run.check()
                    result = await asyncio.to_thread(pm.hook.fetch_page, url=url, config=self.config)
                    if inspect.isawaitable(result):
                        result = await result
                except Cancelled:
                    raise
                except Exception as error:  # a fetcher bug is this URL's problem only
                    result = Page(url=url, status=FetchStatus.ERROR, reason=f"fetcher failed: {error}")
                if result is None:
                    result = Page(url=url, status=FetchStatus.NO_FETCHER, reason="no plugin fetches this URL")
                elif not isinstance(result, Page):
                    result = Page(url=url, status=FetchStatus.ERROR,
                                  reason=f"the fetcher returned {type(result).__name__}, not a Page")
                result.url = url
                result.seconds = result.seconds or round(time.perf_counter() - started, 4)
                return result

        async def everything() -> list[Page]:
            return list(await asyncio.gather(*(one(url) for url in urls)))

        return asyncio.run(everything())

    def _extract(self, page: Page) -> tuple[Document | None, str]:
        try:
            document = pm.hook.extract_document(page=page, config=self.config)
        except Exception as error:  # a page that breaks the extractor is skipped, not fatal
            return None, f"extractor failed: {type(error).__name__}: {error}"
        if document is not None and not isinstance(document, Document):
            return None, f"the extractor returned {type(document).__name__}, not a Document"
        if document is None or not document.text.strip():
            return None, "no main text found on the page"
        if len(document.text.split()) < self.config.min_words:  # menus and cookie notes are not content
            return None, f"main text has fewer than {self.config.min_words} words"
        return document, ""

    def _chunk(self, documents: list[Document]) -> list[tuple[Document, list[Passage]]]:
        chunked = []
        for document in documents:
            passages = pm.hook.chunk_document(document=document, config=self.config)
            if passages is None:
                raise PluginError("no plugin chunks documents")
            for passage in passages:
                if document.text[passage.start:passage.end] != passage.text:
                    raise PluginError(f"chunker produced a passage whose offsets do not match the text of {document.url}")
                passage.title = passage.title or document.title
            chunked.append((document, passages))
        return chunked

    def _store_passages(self, chunked: list[tuple[Document, list[Passage]]], run: _Run) -> None:
        run.check()
        # One embedding call for every new passage: batching is where the embedder is fast.
        vectors = self.embed([p.text for _, passages in chunked for p in passages], "passage")
        offset = 0
        for document, passages in chunked:
            self.store.add_document(document, passages, vectors[offset: offset + len(passages)])
            offset += len(passages)

    # -- retrieval and answer ------------------------------------------------------------
    def _select(self, question: str, retrieval: Retrieval) -> None:
        """The best sentences of this question's pages: the nearest passages of the pages
        already in the store, and the passages of the new pages that share the most of the
        question's rarer words; then each of their sentences scored by meaning and by those
        words."""
        config = self.config
        query_vector = self.embed([question], "query")[0]
        # Cast the net wider than top_k: the sentence with the answer is often in a passage
        # that is not among the few nearest as a whole.
        wanted = config.top_k * config.candidate_factor
        new_urls = {document.url for document, _ in retrieval.unindexed}
        stored = [url for url in retrieval.documents if url not in new_urls]
        passages = self.store.query(query_vector, wanted, urls=stored) if stored else []
        # New pages are not embedded yet (that waits until after the answer, as embedding
        # every passage of five pages takes seconds): their passages are picked by words.
        fresh = [passage for _, chunk in retrieval.unindexed for passage in chunk]
        words = keyword_scores(question, [p.text for p in fresh])
        ranked = sorted(range(len(fresh)), key=lambda i: -words[i])
        # Fewer than for stored pages: every sentence of these is embedded before the answer.
        fresh = [dataclasses.replace(fresh[i], score=None) for i in ranked[: config.top_k * 2]]
        passages = passages + fresh
        candidates: list[Passage] = []
        owners: list[int] = []  # the passage each candidate sentence comes from
        for i, passage in enumerate(passages):
            for start, end in split_sentences(passage.text, passage.start):
                text = passage.text[start - passage.start: end - passage.start]
                if len(text.split()) >= 3:
                    candidates.append(Passage(url=passage.url, text=text, start=start, end=end,
                                              title=passage.title, score=passage.score))
                    owners.append(i)
        vectors = self.embed([c.text for c in candidates], "passage")
        lexical = keyword_scores(question, [c.text for c in candidates])
        similarity = [dot(query_vector, vector) for vector in vectors]
        # A new page's passage has no vector of its own: the mean of its sentences' vectors
        # stands in for it.
        members: dict[int, list[list[float]]] = {}
        for owner, vector in zip(owners, vectors):
            members.setdefault(owner, []).append(vector)
        for i, passage in enumerate(passages):
            if passage.score is None:
                centroid = [sum(column) for column in zip(*members[i])] if i in members else []
                norm = sum(x * x for x in centroid) ** 0.5 or 1.0
                passage.score = round(dot(query_vector, centroid) / norm, 4) if centroid else 0.0
        weight, kind = config.keyword_weight, asked_for(question)
        for candidate, owner, closeness, words in zip(candidates, owners, similarity, lexical):
            # Meaning alone ranks the page's lead sentence first for every question about the
            # page; the question's rarer words find the sentence that answers this one.
            meaning = 0.75 * closeness + 0.25 * passages[owner].score
            candidate.score = (1 - weight) * meaning + weight * words
            # "How many members" is answered by the sentence with a number in it, not by the
            # one that best restates the question.
            if kind and gives(kind, question, candidate.text):
                candidate.score += config.answer_kind_bonus
            candidate.score = round(candidate.score, 4)
        retrieval.candidates, retrieval.candidate_vectors = candidates, vectors
        best = [0.0] * len(passages)
        for owner, candidate in zip(owners, candidates):
            best[owner] = max(best[owner], candidate.score)
        order = sorted(range(len(passages)), key=lambda i: -best[i])
        retrieval.passages = [passages[i] for i in order[: config.top_k]]
        budget, chosen = config.prompt_chars, []
        for candidate in sorted(candidates, key=lambda c: -c.score):
            if len(candidate.text) + 1 > budget:
                continue
            budget -= len(candidate.text) + 1
            chosen.append(candidate)
        retrieval.prompt_passages = chosen

    def _answer(self, question, conversation, retrieval: Retrieval, run: _Run) -> Iterator[Event]:
        config = self.config
        sources = retrieval.sources
        if not retrieval.candidates:
            answer = Answer(question=question, sources=sources)
            yield Event("error", {"message": "the pages read have no passage to answer from", "fatal": False})
            yield Event("answer", {"answer": answer.to_dict(), "timings": run.timings})
            return
        extractive = extractive_answer(question, sources, retrieval.candidates)
        yield Event("extractive_answer", {"answer": extractive.to_dict()})

        answer = extractive
        turn: dict = {"question": question}  # what a follow-up question needs of this one
        model = self.chat_model() if config.llm else None
        if config.llm and model is None:
            yield Event("error", {"message": f"no LLM answer: {self.chat_model_error}", "fatal": False,
                                  "stage": "answer"})
        if model is not None:
            extractive.model = model.name
            yield run.start("answer")
            try:
                messages = pm.hook.build_prompt(question=question, sources=sources,
                                                passages=retrieval.prompt_passages,
                                                conversation=conversation or [], config=config)
            except Exception as error:  # the built-in prompt stands in for a broken one
                yield Event("error", {"message": f"prompt plugin failed: {error}", "fatal": False, "stage": "answer"})
                messages = None
            messages = messages or default_messages(question, sources, retrieval.prompt_passages, conversation)
            turn.update(messages=messages)
            text, started, first_token = "", time.perf_counter(), None
            try:
                for delta in model.stream(messages, max_tokens=config.max_tokens, temperature=config.temperature):
                    run.check()
                    if first_token is None:
                        first_token = round(time.perf_counter() - started, 4)
                    text += delta
                    yield Event("answer_delta", {"text": delta})
            except Cancelled:
                raise
            except Exception as error:  # the extractive answer stands in for a failed model
                yield Event("error", {"message": f"the language model failed: {error}", "fatal": False,
                                      "stage": "answer"})
                text = ""
            usage = getattr(model, "last_usage", None) or {}  # optional: what the model can report
            yield run.end("answer", chars=len(text), first_token=first_token, **usage)
            if text.strip():
                turn["reply"] = text
                yield run.start("verify")
                checked = ground_answer(question, text, sources, retrieval.candidates,
                                        retrieval.candidate_vectors, lambda t: self.embed(t, "passage"),
                                        config.support_threshold,
                                        {url: d.text for url, d in retrieval.documents.items()})
                checked.model = model.name
                yield run.end("verify", citations=len(checked.citations))
                why = why_not_standing(question, checked,
                                       extractive.citations if config.answer_from_evidence else None)
                if not why:
                    answer = checked
                else:
                    # Nothing the model wrote is backed by a source, or what is backed does not
                    # answer the question or strays from the best evidence: the cited extract
                    # is the honest answer.
                    yield Event("error", {"message": f"{why}, so the extractive answer stands (the model "
                                          f"wrote: {checked.text})", "fatal": False, "stage": "verify"})

        numbers = {s.n: s.url for s in sources}
        frozen = [dataclasses.replace(s) for s in sources]
        try:
            pm.hook.process_answer(answer=answer, passages=retrieval.prompt_passages, config=config)
        except Exception as error:  # a broken post-processor costs its edit, not the answer
            yield Event("error", {"message": f"answer plugin failed: {error}", "fatal": False, "stage": "verify"})
        # Whatever a plugin did: sources are the pages we read, and every citation names one of them.
        answer.sources = frozen
        answer.citations = [c for c in answer.citations
                            if isinstance(c, Citation) and numbers.get(c.n) == c.url]
        answer.text = sanitize_answer_text(answer.text, numbers)
        turn["answer"] = answer.text
        if "reply" not in turn:
            turn.pop("messages", None)  # without the model's reply the prompt cannot be continued
        yield Event("answer", {"answer": answer.to_dict(), "timings": run.timings, "turn": turn})


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


def _internal_error(error: Exception, run: _Run) -> Event:
    """A fatal error event for an unexpected exception, with the traceback for ``--debug``."""
    return Event("error", {"message": f"internal error: {type(error).__name__}: {error}", "fatal": True,
                           "kind": "internal", "traceback": traceback.format_exc(), "timings": run.timings})


def _fuse(ranked: list[tuple[str, list[SearchResult]]]) -> list[SearchResult]:
    """Reciprocal rank fusion of several ranked lists, de-duplicated by normalised URL."""
    merged: dict[str, SearchResult] = {}
    scores: dict[str, float] = {}
    for _, hits in ranked:
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
    order = sorted(merged, key=lambda k: -scores[k])
    fused = []
    for rank, key in enumerate(order, 1):
        hit = merged[key]
        hit.rank, hit.score = rank, round(scores[key], 6)
        fused.append(hit)
    return fused


def fold_events(events) -> dict:
    """Fold an ``ask`` event stream into the one JSON document of ``--json``."""
    result = {"question": None, "answer": "", "citations": [], "sources": [], "unsupported": [],
              "timings": {}, "usage": {}, "model": None, "extractive": True, "errors": []}
    for event in events:
        if event.type == "extractive_answer" or event.type == "answer":
            answer = event.data["answer"]
            result.update(question=answer["question"], answer=answer["text"], citations=answer["citations"],
                          sources=answer["sources"], unsupported=answer["unsupported"],
                          model=answer["model"], extractive=answer["extractive"])
        elif event.type == "sources":
            result["sources"] = event.data["sources"]
        elif event.type == "stage_end" and event.data["stage"] == "answer":
            result["usage"] = {k: event.data[k] for k in ("prompt_tokens", "completion_tokens", "cached_tokens",
                                                          "first_token") if k in event.data}
        elif event.type == "error":
            result["errors"].append(event.data["message"])
            if event.data.get("fatal"):
                result["fatal"] = event.data["message"]
                if "traceback" in event.data:
                    result["traceback"] = event.data["traceback"]
        if "timings" in event.data:
            result["timings"] = dict(event.data["timings"])
    return result
