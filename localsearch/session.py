"""The session layer: one code path from a request to its messages, for every front end.

A ``Session`` checks a request against the protocol (``protocol.py``), decides what its sender
may change, runs it on the warm pipeline and streams its messages back, each carrying the
request's ``id``; every stream ends with exactly one ``done`` or ``error``. The CLI in-process,
the Unix socket of ``localsearch serve`` and the native-messaging host are transports over it.
``stream()`` is what a front end calls: it uses a running server if there is one, else a
session in this process.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from . import __version__, components
from .config import Config
from .errors import LocalsearchError
from .events import warning
from .history import History, HistoryError
from . import preferences
from .image_requests import image_events, tools_listed
from .protocol import (CLIENTS, CONTROL_REQUESTS, DATA_REQUESTS, IMAGE_REQUESTS, PROTOCOL_VERSION, ProtocolError,
                       check_request, check_settings, error_message, message)
from .types import Event, Page

__all__ = ["Session", "stream", "message", "events_of"]

Send = Callable[[dict], bool]  # delivers one message; False once the client is gone
STORE_BEFORE_CLOSE = 60.0  # seconds a closing server gives the pages it read to be stored


@dataclass
class _Job:
    id: str
    kind: str
    fields: dict
    client: str
    send: Send
    scope: object
    cancel: threading.Event = field(default_factory=threading.Event)
    asked: float = field(default_factory=time.time)


class Session:
    """Runs requests on one warm pipeline: ``serve_workers`` at once, up to ``serve_queue``
    waiting, and a clear ``busy`` error past that."""

    def __init__(self, config: Config):
        from .pipeline import Pipeline

        self.config = config
        self.pipeline = Pipeline(config=config)
        self.history = History(config.data_dir)
        self.started = time.time()
        self._lock = threading.Lock()
        self._running: dict[tuple, _Job] = {}
        self._waiting: deque[_Job] = deque()

    # -- the transports' entry points ----------------------------------------------------
    def handle(self, request, client: str, send: Send, scope: object = None) -> None:
        """Take one request from a connection (``scope``) and answer it through ``send``:
        at once for control requests, from a worker thread for work. Never raises."""
        try:
            id, kind, fields = _checked(request, client)
        except ProtocolError as error:
            _delivered(send, error_message(error.id, f"bad request: {error}", "protocol"))
            return
        if kind in CONTROL_REQUESTS:
            # The data directory's requests may wait for another process's write: not on the
            # thread that reads this connection (a cancel behind them must not wait too).
            if kind in DATA_REQUESTS:
                threading.Thread(target=self._answer, args=(id, kind, fields, client, scope, send),
                                 name=f"localsearch-data-{id}", daemon=True).start()
            else:
                self._answer(id, kind, fields, client, scope, send)
            return
        job = _Job(id, kind, fields, client, send, scope)
        with self._lock:
            if (scope, id) in self._running or any((j.scope, j.id) == (scope, id) for j in self._waiting):
                busy_with_id = True
            else:
                busy_with_id = False
                if len(self._running) < self.config.serve_workers:
                    self._running[(scope, id)] = job
                    start = True
                elif len(self._waiting) < self.config.serve_queue:
                    self._waiting.append(job)
                    start = False
                else:
                    start = None
        if busy_with_id:
            _delivered(send, error_message(id, f"bad request: a request with id {id!r} is still running", "protocol"))
        elif start is None:
            _delivered(send, error_message(id, f"busy: {self.config.serve_workers} requests are running and "
                                               f"{self.config.serve_queue} waiting; try again shortly", "busy"))
        elif start:
            try:
                threading.Thread(target=self._work, args=(job,), name=f"localsearch-request-{id}", daemon=True).start()
            except RuntimeError as error:  # no thread to be had: the slot must not stay taken
                with self._lock:
                    self._running.pop((scope, id), None)
                _delivered(send, error_message(id, f"busy: cannot start a worker ({error})", "busy"))

    def _answer(self, id: str, kind: str, fields: dict, client: str, scope: object, send: Send) -> None:
        for reply in self._control(id, kind, fields, client, scope):
            _delivered(send, reply)

    def run(self, request, client: str = "cli") -> Iterator[dict]:
        """Check and run one request in the calling thread (a front end in this process)."""
        try:
            id, kind, fields = _checked(request, client)
        except ProtocolError as error:
            yield error_message(error.id, f"bad request: {error}", "protocol")
            return
        if kind in CONTROL_REQUESTS:
            yield from self._control(id, kind, fields, client, None)
            return
        job = _Job(id, kind, fields, client, lambda _: True, None)
        yield from self._messages(job)

    def disconnect(self, scope: object) -> None:
        """A connection closed: stop every request it sent (a vanished client frees its work)."""
        with self._lock:
            for job in [j for j in self._waiting if j.scope is scope]:
                self._waiting.remove(job)
            for (owner, _), job in self._running.items():
                if owner is scope:
                    job.cancel.set()

    def close(self, store_within: float = STORE_BEFORE_CLOSE) -> int:
        """Stop every request; the pages read but not stored yet get ``store_within`` seconds
        to be stored, or until Ctrl-C (what is left is read again when next asked for).
        Returns how many pages were not stored."""
        with self._lock:
            for job in self._running.values():
                job.cancel.set()
            self._waiting.clear()
        dropped = self.pipeline.indexer.finish(store_within)
        self.pipeline.close()
        return dropped

    # -- inside ---------------------------------------------------------------------------
    def _work(self, job: _Job | None) -> None:
        """Run ``job``, then the waiting ones, on this thread. Whatever happens (a client whose
        send raises, a bug), the job's slot is freed and its stream ended."""
        while job is not None:
            ended, delivering = False, True
            try:
                for reply in self._messages(job):
                    ended = reply["type"] in ("done", "error")
                    if delivering and not _delivered(job.send, reply):
                        delivering = False
                        job.cancel.set()  # the client went away: stop at the next stage or token
            except BaseException as error:  # not expected: _messages catches what the pipeline raises
                if not ended:
                    _delivered(job.send, error_message(job.id, f"internal error: {type(error).__name__}: {error}",
                                                "internal"))
            finally:
                with self._lock:
                    self._running.pop((job.scope, job.id), None)
                    job = self._waiting.popleft() if self._waiting else None
                    if job is not None:
                        self._running[(job.scope, job.id)] = job

    def _messages(self, job: _Job) -> Iterator[dict]:
        """The request's messages, ending with exactly one ``done`` or ``error``."""
        try:
            events = self._events(job)
            for event in events:
                yield message(job.id, event.type, event.data)
                if event.type in ("done", "error"):
                    events.close()
                    return
            yield error_message(job.id, "internal error: the request ended without a result", "internal")
        except ProtocolError as error:
            yield error_message(job.id, f"bad request: {error}", "protocol")
        except LocalsearchError as error:
            yield error_message(job.id, str(error), type(error).__name__)
        except Exception as error:  # a bug ends this request, never the session
            yield error_message(job.id, f"internal error: {type(error).__name__}: {error}", "internal")

    def _events(self, job: _Job) -> Iterator[Event]:
        fields, pipeline = job.fields, self.pipeline
        settings = fields.get("settings") or {}
        check_settings(settings, job.client)
        if job.client == "browser":  # the options page's choices, then the request's own
            settings = preferences.applied(self.config, settings)
        if job.kind in IMAGE_REQUESTS:
            return image_events(job.kind, fields, self.config, job.cancel)
        if job.kind in ("ask", "ask_page"):
            keep = self.config.replace(**settings).history if "history" in settings else self.config.history
            conversation_id = fields.get("conversation_id")
            conversation = fields.get("conversation")
            if conversation_id is not None:  # continued from the history, kept in it only if it is on
                conversation = self.history.turns(conversation_id)
            if job.kind == "ask":
                events = pipeline.ask(fields["question"], conversation=conversation, settings=settings,
                                      cancel=job.cancel)
            else:
                given = fields["page"]
                page = Page(url=given["url"], status="ok", final_url=given["url"], html=given["html"],
                            content_type="text/html", title=given.get("title") or "")
                events = pipeline.ask(fields["question"], conversation=conversation, page=page,
                                      focus=given.get("selection") or "", search_web=bool(fields.get("search")),
                                      settings=settings, cancel=job.cancel)
            return self._kept(events, conversation_id, job) if keep else events
        if job.kind == "search":
            return pipeline.ask(fields["query"], settings=settings, cancel=job.cancel, generate=False)
        # index: file: URLs only when the user named them on the command line
        return pipeline.index(fields["urls"], refresh=bool(fields.get("refresh")), cancel=job.cancel,
                              allow_files=job.client == "cli")

    def _kept(self, events: Iterator[Event], conversation_id: str | None, job: _Job) -> Iterator[Event]:
        """``events``, with the answer kept in the history: its message then carries the
        conversation's id and the turn's position. An answer the history cannot keep is still
        given, after a warning."""
        try:
            for event in events:
                if event.type == "answer":
                    try:
                        kept_in, position = self.history.add_turn(conversation_id, event.data, job.client, job.asked)
                    except HistoryError as error:
                        yield warning(f"not kept in the history: {error}", "answer")
                    else:
                        event = Event("answer", {**event.data, "conversation_id": kept_in, "position": position})
                yield event
        finally:
            events.close()  # at once, as _messages closes the stream it is given

    def _control(self, id: str, kind: str, fields: dict, client: str, scope: object) -> Iterator[dict]:
        if kind in DATA_REQUESTS:
            try:
                if kind == "preferences":
                    yield from self._preferences(id, fields)
                elif kind == "image_tools":
                    yield message(id, "image_tools", {"tools": tools_listed(self.config)})
                    yield message(id, "done")
                else:
                    yield from self._history(id, kind, fields, client)
            except (HistoryError, preferences.PreferencesError) as error:
                yield error_message(id, str(error), type(error).__name__)
            except Exception as error:  # a bug ends this request, never the connection
                yield error_message(id, f"internal error: {type(error).__name__}: {error}", "internal")
        elif kind == "ping":
            yield message(id, "pong", {"protocol": PROTOCOL_VERSION, "version": __version__})
            yield message(id, "done")
        elif kind == "status":
            with self._lock:
                running, waiting = len(self._running), len(self._waiting)
            yield message(id, "status", {"protocol": PROTOCOL_VERSION, "version": __version__, "pid": os.getpid(),
                                         "data_dir": self.config.data_dir, "running": running, "waiting": waiting,
                                         "workers": self.config.serve_workers, "queue": self.config.serve_queue,
                                         "loaded": components.loaded(),
                                         "indexing": self.pipeline.indexer.waiting(),
                                         "uptime": round(time.time() - self.started, 1)})
            yield message(id, "done")
        else:
            yield message(id, "done", {"cancelled": self._cancel(fields["target"], scope)})

    def _history(self, id: str, kind: str, fields: dict, client: str) -> Iterator[dict]:
        if kind == "history":
            limit = 50 if fields.get("limit") is None else fields["limit"]  # null: the default, as absent
            conversations, total = self.history.conversations(limit, fields.get("offset") or 0, fields.get("query") or "")
            enabled = self.config.history
            if client == "browser":
                enabled = preferences.applied(self.config, {}).get("history", enabled)
            yield message(id, "conversations", {"conversations": conversations, "total": total,
                                                "enabled": bool(enabled)})
            yield message(id, "done")
        elif kind == "conversation":
            yield message(id, "conversation", self.history.conversation(fields["conversation_id"]))
            yield message(id, "done")
        else:
            deleted = self.history.delete(None if fields.get("all") else [fields["conversation_id"]])
            yield message(id, "done", {"deleted": deleted})

    def _preferences(self, id: str, fields: dict) -> Iterator[dict]:
        if fields.get("set") is not None:
            saved = preferences.save(self.config, fields["set"])
        else:
            saved = preferences.load(self.config)
        names = [name for name in preferences.PREFERENCES if name in self.config]
        described = {s["name"]: s["help"] for s in self.config.describe()}
        effective = self.config.replace(**saved)
        yield message(id, "preferences", {"values": {name: effective[name] for name in names}, "saved": saved,
                                          "help": {name: described[name] for name in names},
                                          "engines": sorted(self.pipeline.engines)})
        yield message(id, "done")

    def _cancel(self, target: str, scope: object) -> bool:
        with self._lock:
            job = self._running.get((scope, target))
            if job is not None:
                job.cancel.set()
                return True
            for waiting in self._waiting:
                if (waiting.scope, waiting.id) == (scope, target):
                    self._waiting.remove(waiting)
                    break
            else:
                return False
        _delivered(waiting.send, error_message(target, "cancelled", "cancelled"))
        return True


def _delivered(send: Send, reply: dict) -> bool:
    try:
        return bool(send(reply))
    except Exception:  # a transport that fails to send has lost its client
        return False


def _checked(request, client: str) -> tuple[str, str, dict]:
    """(id, type, fields) of a request this client may send, else ProtocolError."""
    id, kind, fields = check_request(request)
    if client not in CLIENTS:
        raise ProtocolError(f"unknown client {client!r}", id)
    if kind == "ask_page" and not fields["page"]["url"].lower().startswith(("http://", "https://")):
        raise ProtocolError("the page's url must be an http or https address", id)
    if kind in IMAGE_REQUESTS and not (fields.get("image") or fields.get("url")):
        raise ProtocolError("send the image (`image`, base64) or its address (`url`)", id)
    return id, kind, fields


def events_of(messages: Iterator[dict]) -> Iterator[Event]:
    """The Events of one request's messages (what the CLI's renderers take)."""
    for item in messages:
        yield Event(item["type"], item.get("data") or {})


_local: dict[tuple, Session] = {}  # one in-process session per configuration, kept for reuse


def stream(request: dict, config: Config | None = None, client: str = "cli") -> Iterator[dict]:
    """The messages of ``request``: from a running ``localsearch serve`` (its models are warm,
    and only one process then writes the index) if there is one, else from a session in this
    process, kept for the next request."""
    config = config or Config.load()
    if config.use_server:
        from .server import remote_stream

        remote = remote_stream(config, request, client)
        if remote is not None:
            return remote
    key = tuple((s["name"], repr(s["value"])) for s in config.describe())
    if key not in _local:
        _local[key] = Session(config)
        if len(_local) == 1:  # after the indexer's own exit handler, so that this one runs first
            atexit.register(_store_before_exit)
    return _local[key].run(request, client)


def _store_before_exit() -> None:
    """A command's pages are stored before its process ends: they were read, so keep them."""
    waiting = sum(session.pipeline.indexer.waiting() for session in _local.values())
    if waiting and sys.stderr.isatty():
        sys.stderr.write(f"storing {_pages(waiting)} in the local index (Ctrl-C to skip)...\n")
    dropped = sum(session.pipeline.indexer.finish() for session in _local.values())
    if dropped and sys.stderr.isatty():
        sys.stderr.write(f"not stored: {_pages(dropped)}, read again when next asked for\n")


def _pages(count: int) -> str:
    return f"{count} page{'s' if count != 1 else ''}"
