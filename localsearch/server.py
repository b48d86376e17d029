"""``localsearch serve``: one warm process that keeps the models loaded for every front end.

A transport over the session layer: clients connect to a Unix socket in the (private) data
directory and write requests as JSON lines; messages come back as JSON lines, each with its
request's ``id``, so one connection may carry several requests at once. A request line may
carry ``"client": "cli"`` (the user's own command line); anything else is treated as the
browser, the least trusted sender. Without a server running, front ends run a session in
their own process (``session.stream``).
"""

from __future__ import annotations

import json
import os
import queue
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .config import Config, redact
from .errors import LocalsearchError
from .events import finite
from .private import private_directory
from .protocol import error_message

__all__ = ["socket_path", "connect", "serve", "start_in_background", "remote_stream", "MAX_LINE"]

# A request line may hold a page as rendered (protocol.MAX_HTML characters, some escaped).
MAX_LINE = 64 * 1024 * 1024


def socket_path(config: Config) -> Path:
    return Path(config.data_dir) / "serve.sock"


def connect(path: Path) -> socket.socket | None:
    """A connection to the server listening on ``path``, or None when none is."""
    if not path.exists():
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(path))
    except OSError:  # a socket file left by a server that is gone
        connection.close()
        return None
    return connection


def remote_stream(config: Config, request: dict, client: str = "cli") -> Iterator[dict] | None:
    """The messages of ``request`` answered by a running server, or None when none answers.
    A stream that breaks off or garbles ends in an ``error`` message, never in silence."""
    connection = connect(socket_path(config))
    if connection is None:
        return None
    id = request.get("id")

    def messages() -> Iterator[dict]:
        with connection, connection.makefile("rwb") as channel:
            try:
                channel.write(json.dumps({**request, "client": client}).encode("utf-8") + b"\n")
                channel.flush()
            except OSError as error:
                yield error_message(id, f"could not send the request to the server: {error}", "transport")
                return
            for line in channel:
                try:
                    reply = json.loads(line)
                    if not isinstance(reply, dict) or not isinstance(reply.get("type"), str):
                        raise ValueError("not a message object")
                except ValueError as error:
                    yield error_message(id, f"the server sent a garbled message ({error}): {line[:80]!r}", "transport")
                    return
                if reply.get("id") != id and reply.get("id") is not None:
                    continue
                yield reply
                if reply["type"] in ("done", "error"):
                    return
            yield error_message(id, "the server's answer broke off before the request finished", "transport")

    return messages()


def encode(message: dict) -> bytes:
    """One message as a JSON line. A value a plugin left in an event that JSON does not know
    (bytes, a numpy number, a date) goes as its text rather than failing the stream."""
    try:  # ASCII escapes: a lone surrogate stays JSON
        text = json.dumps(message, default=_as_text, allow_nan=False)
    except ValueError:  # a NaN or an infinity somewhere: null, which every JSON reader takes
        text = json.dumps(finite(message), default=_as_text, allow_nan=False)
    return text.encode("ascii") + b"\n"


def _as_text(value) -> str | float:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    return str(value)


class _Writer:
    """Sends a connection's messages from a thread of its own, so that a client that stops
    reading blocks only this thread, never a request (which may hold the model). Past
    ``backlog`` unsent messages the client counts as gone and its requests are cancelled."""

    def __init__(self, stream, backlog: int = 2000):
        self.stream, self.alive = stream, True
        self.queue: queue.Queue = queue.Queue(maxsize=backlog)
        threading.Thread(target=self._write, name="localsearch-writer", daemon=True).start()

    def send(self, message: dict) -> bool:
        if not self.alive:
            return False
        try:
            self.queue.put_nowait(encode(message))
        except queue.Full:
            self.alive = False
        return self.alive

    def _write(self) -> None:
        while True:
            data = self.queue.get()
            if data is None:
                return
            try:
                self.stream.write(data)
                self.stream.flush()
            except (OSError, ValueError):  # the client went away (ValueError: file already closed)
                self.alive = False
                return

    def close(self) -> None:
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            pass


class _Connection(socketserver.StreamRequestHandler):
    """One client connection: reads request lines until it closes, and frees the work of its
    requests when it does."""

    def handle(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        server.seen(+1)
        writer = _Writer(self.wfile)
        send = writer.send
        try:
            while True:
                line = self.rfile.readline(MAX_LINE)
                if not line:
                    return
                if not line.endswith(b"\n") and len(line) >= MAX_LINE:
                    send(error_message(None, f"bad request: a request line is over {MAX_LINE:,} bytes", "protocol"))
                    return  # the rest of that line cannot be told from the next request
                try:
                    request = json.loads(line)
                except ValueError as error:  # json's UnicodeDecodeError included
                    send(error_message(None, f"bad request: not JSON ({error})", "protocol"))
                    continue
                client = request.pop("client", "browser") if isinstance(request, dict) else "browser"
                if isinstance(request, dict):  # what came, never what it says: questions stay out of logs
                    server.log(f"{str(request.get('type'))[:32]} {str(request.get('id'))[:32]!r} from {client}, "
                               f"{len(line):,} bytes")
                server.session.handle(request, client if client == "cli" else "browser", send, scope=self)
        except OSError:
            pass
        finally:
            server.session.disconnect(self)
            writer.close()
            server.seen(-1)


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, session, log):
        self.session, self.log = session, log
        self.clients, self.last_client = 0, time.monotonic()
        self._clients_lock = threading.Lock()
        previous = os.umask(0o177)  # the socket is born private: no moment when others may connect
        try:
            super().__init__(str(path), _Connection)
        finally:
            os.umask(previous)
        os.chmod(path, 0o600)

    def seen(self, change: int) -> None:
        """A client connected (+1) or went (-1)."""
        with self._clients_lock:
            self.clients += change
            self.last_client = time.monotonic()

    def stop_when_idle(self, seconds: float) -> None:
        """Shut down once no client has been connected for ``seconds`` (in a thread of its own).
        The socket file goes first, in the same step as the last check that no client is
        connected: from then on a new client starts a new server instead of reaching this one
        as it stops."""
        def watch() -> None:
            while True:
                time.sleep(min(1.0, seconds / 4))
                with self._clients_lock:
                    idle = not self.clients and time.monotonic() - self.last_client >= seconds
                    if idle:
                        Path(self.server_address).unlink(missing_ok=True)
                if idle:
                    self.log(f"no client for {seconds:.0f} s: stopping")
                    self.shutdown()
                    return

        threading.Thread(target=watch, name="localsearch-idle", daemon=True).start()


def start_in_background(config: Config) -> None:
    """Start ``localsearch serve`` in a process of its own that outlives this one and stops
    after ``server_idle_minutes`` without a client; its output goes to server.log."""
    import subprocess

    private_directory(Path(config.data_dir))
    with open(Path(config.data_dir) / "server.log", "a") as output:
        subprocess.Popen([sys.executable, "-m", "localsearch", "serve", "--idle-minutes",
                          str(config.server_idle_minutes)], stdin=subprocess.DEVNULL, stdout=output,
                         stderr=output, start_new_session=True)


def serve(config: Config, log=lambda message: print(redact(message), file=sys.stderr, flush=True),
          idle_minutes: float = 0) -> None:
    """Load the models, then answer requests on the socket until interrupted (or, given
    ``idle_minutes``, until no client has come for that long)."""
    from .session import Session

    path = socket_path(config)
    private_directory(path.parent)
    lock = _server_lock(path.parent / "serve.lock", path)
    existing = connect(path)
    if existing is not None:  # a server of an older version, which took no lock
        existing.close()
        raise LocalsearchError(f"a server is already running on {path}")
    path.unlink(missing_ok=True)  # left by a server that was killed: no one listens on it
    session = Session(config)
    server = _Server(path, session, log)
    try:
        session.pipeline.warm_up(with_model=config.llm)
        server.seen(0)  # the idle time counts from now, not from before the models loaded
        log(f"localsearch is serving on {path}; models are loaded")
        if idle_minutes > 0:
            server.stop_when_idle(idle_minutes * 60)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        try:
            server.server_close()
            waiting = session.pipeline.indexer.waiting()
            if waiting:
                log(f"storing the {waiting} page(s) read but not stored yet (Ctrl-C to stop now)")
            dropped = session.close()
            if dropped:
                log(f"stopped without storing {dropped} page(s): they are read again when next asked for")
        finally:  # however the stop went (a Ctrl-C in the middle of it), the socket and the lock go
            path.unlink(missing_ok=True)
            lock.close()


def _server_lock(path: Path, socket_file: Path, wait: float = 90.0):
    """An exclusive lock on ``path``, held while this process serves. Two servers started at
    once (two browsers opening their panels) would otherwise both bind the socket, the second
    unlinking the first's: one server nobody can reach. While another process holds the lock
    it is starting (its socket soon answers: LocalsearchError) or stopping (storing what it
    read: wait for it, up to ``wait`` seconds)."""
    import fcntl

    lock = open(path, "a")
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except OSError:
            pass
        running = connect(socket_file)
        if running is not None or time.monotonic() > deadline:
            if running is not None:
                running.close()
            lock.close()
            raise LocalsearchError(f"a server is already running in {path.parent}" if running is not None else
                                   f"another server holds {path} and has not answered for {wait:.0f} s")
        time.sleep(0.1)
