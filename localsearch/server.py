"""``localsearch serve``: one warm process that keeps the models loaded for every question.

The CLI (and the native-messaging host) send a question over a Unix socket in the data
directory and read the pipeline's events back, one JSON object per line. Without a server
running, they run the pipeline in their own process, exactly as before.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from .config import Config
from .errors import LocalsearchError
from .types import Event

__all__ = ["socket_path", "serve", "remote_call"]

MAX_REQUEST = 16 * 1024 * 1024


def socket_path(config: Config) -> Path:
    return Path(config.data_dir) / "serve.sock"


def _connect(path: Path) -> socket.socket | None:
    if not path.exists():
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(path))
    except OSError:  # a socket file left by a server that is gone
        connection.close()
        return None
    return connection


METHODS = {"ask": {"question", "generate", "conversation"}, "index": {"urls", "refresh"}}


def remote_call(config: Config, settings: dict, method: str, **arguments) -> Iterator[Event] | None:
    """Events of ``Pipeline.<method>(**arguments)`` run by a server, or None when no server
    answers. ``settings`` are the caller's overrides of the server's configuration."""
    connection = _connect(socket_path(config))
    if connection is None:
        return None

    def events() -> Iterator[Event]:
        with connection, connection.makefile("rwb") as stream:
            request = {"method": method, "arguments": arguments, "settings": settings}
            stream.write(json.dumps(request).encode("utf-8") + b"\n")
            stream.flush()
            for line in stream:
                event = json.loads(line)
                yield Event(event["type"], event["data"])

    return events()


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        try:
            request = json.loads(self.rfile.readline(MAX_REQUEST))
            method, arguments = request["method"], request.get("arguments") or {}
            settings = request.get("settings") or {}
            if method not in METHODS or not isinstance(arguments, dict) or not isinstance(settings, dict):
                raise ValueError(f"method must be one of {sorted(METHODS)}, arguments and settings objects")
            if set(arguments) - METHODS[method]:
                raise ValueError(f"unknown arguments {sorted(set(arguments) - METHODS[method])}")
            pipeline = server.pipeline_for(settings)
        except (ValueError, KeyError, TypeError, LocalsearchError) as error:
            self._send(Event("error", {"message": f"bad request: {error}", "fatal": True}))
            return
        cancel = threading.Event()
        server.log(f"{method}: {json.dumps(arguments, ensure_ascii=False)[:200]}")
        with server.busy:  # the models and the store are shared: one request at a time
            events = getattr(pipeline, method)(**arguments, cancel=cancel)
            for event in events:
                if not self._send(event):
                    cancel.set()  # the client went away: stop at the next stage or token
            events.close()

    def _send(self, event: Event) -> bool:
        try:
            self.wfile.write(json.dumps(event.to_dict(), ensure_ascii=False).encode("utf-8") + b"\n")
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, config: Config, log):
        self.base = config
        self.pipelines: dict[str, object] = {}
        self.lock = threading.Lock()
        self.busy = threading.Lock()
        self.log = log
        super().__init__(str(path), _Handler)
        os.chmod(path, 0o600)  # only this user may ask

    def pipeline_for(self, settings: dict):
        """One warm pipeline per distinct set of settings (they share the loaded models)."""
        from .pipeline import Pipeline

        key = json.dumps(settings, sort_keys=True)
        with self.lock:
            if key not in self.pipelines:
                config = self.base.replace(**settings) if settings else self.base
                self.pipelines[key] = Pipeline(config=config)
            return self.pipelines[key]


def serve(config: Config, log=lambda message: print(message, file=sys.stderr, flush=True)) -> None:
    """Load the models, then answer questions on the socket until interrupted."""
    path = socket_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = _connect(path)
    if existing is not None:
        existing.close()
        raise LocalsearchError(f"a server is already running on {path}")
    path.unlink(missing_ok=True)
    server = _Server(path, config, log)
    try:
        server.pipeline_for({}).warm_up(with_model=config.llm)
        log(f"localsearch is serving on {path}; models are loaded")
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        path.unlink(missing_ok=True)
