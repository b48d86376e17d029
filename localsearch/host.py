"""``localsearch host``: the native-messaging host the browser starts.

A thin relay, as KeePassXC's proxy is to its app: frames from the browser on stdin become
request lines to the warm ``localsearch serve`` process, and its messages go back as frames on
stdout, so the models stay loaded however often the browser reconnects. When no server is
running the host starts one, which stops by itself after ``server_idle_minutes`` without a
client. Nothing but frames ever reaches stdout: the log is ``host.log`` in the data directory.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO

from .config import Config, redact
from .native import FrameError, read_message, write_message
from .protocol import error_message
from .server import MAX_LINE

__all__ = ["EXTENSION_ID", "GECKO_ID", "caller_refusal", "run_host"]

# The extension's fixed ids: Chromium's is derived from the public `key` in
# extension/manifest.json (a test checks it), Firefox's is its gecko id there.
EXTENSION_ID = "denoflnocdkgikopbhcbkhcmjgocbhbc"
GECKO_ID = "localsearch@localsearch"
# How long a server the host started may take to open its socket: it loads nothing first, but
# waits for a server that is stopping to finish storing what it read.
SERVER_START_SECONDS = 90.0


def caller_refusal(argv: list[str], config: Config) -> str:
    """Why the caller named by the host's arguments may not use it, or "" if it may.

    Chromium passes ``chrome-extension://ID/`` first (Windows adds ``--parent-window=``);
    Firefox passes the host manifest's path and the add-on's id. Allowed: the extension's own
    ids and those the user lists in the ``host_extensions`` setting."""
    allowed = {EXTENSION_ID, GECKO_ID, *config.host_extensions}
    origin = next((arg for arg in argv if arg.startswith("chrome-extension://")), None)
    if origin is not None:
        caller = origin.removeprefix("chrome-extension://").rstrip("/")
    elif len(argv) >= 2:
        caller = argv[1]
    else:
        return ("localsearch host is started by a browser extension through native messaging; "
                "it was started without the caller's id")
    if caller in allowed:
        return ""
    return (f"the extension {caller!r} may not use localsearch (allowed: the localsearch extension, and the ids "
            f"in the host_extensions setting)")


class _Log:
    """Lines to host.log in the data directory and to stderr; never to stdout."""

    def __init__(self, config: Config):
        self.path = Path(config.data_dir) / "host.log"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.path, "a", encoding="utf-8")
        except OSError:
            self.file = None

    def __call__(self, message: str) -> None:
        line = redact(f"{time.strftime('%Y-%m-%d %H:%M:%S')} host[{os.getpid()}] {message}")
        for stream in (self.file, sys.stderr):
            if stream is not None:
                try:
                    print(line, file=stream, flush=True)
                except (OSError, ValueError):
                    pass


def _server_connection(config: Config, log) -> socket.socket:
    """A connection to the running server, starting one first if none answers."""
    from .server import connect, socket_path, start_in_background

    path = socket_path(config)
    connection = connect(path)
    if connection is not None:
        return connection
    log(f"no server on {path}: starting one")
    start_in_background(config)
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        connection = connect(path)
        if connection is not None:
            return connection
        time.sleep(0.05)
    raise OSError(f"the server did not start within {SERVER_START_SECONDS:.0f} s (see server.log in "
                  f"{config.data_dir})")


class _Relay:
    """Frames to the browser from one thread at a time; request lines to the server."""

    def __init__(self, stdout: BinaryIO, log):
        self.stdout, self.log = stdout, log
        self.lock = threading.Lock()
        self.in_flight: set[str] = set()  # ids of requests the server has not finished
        self.closing = False  # the browser closed its end: what is cut short is no one's loss

    def to_browser(self, message: dict) -> None:
        with self.lock:
            if message.get("type") in ("done", "error"):
                self.in_flight.discard(message.get("id"))
            try:
                write_message(message, self.stdout)
            except (OSError, ValueError) as error:  # the browser went away, or an id too long to send
                self.log(f"could not write to the browser: {error}")

    def error(self, id, text: str, kind: str = "protocol") -> None:
        self.to_browser(error_message(id, text, kind))

    def from_server(self, connection: socket.socket) -> None:
        """Every message the server sends, to the browser; if the server goes, the requests it
        had get an error."""
        try:
            with connection.makefile("rb") as lines:
                for line in lines:
                    try:
                        message = json.loads(line)
                    except ValueError:
                        self.log(f"the server sent a garbled line: {line[:80]!r}")
                        continue
                    if isinstance(message, dict):
                        self.to_browser(message)
        except OSError as error:  # the connection broke: as if the server had gone
            self.log(f"the connection to the server broke: {error}")
        with self.lock:
            cut_short = [] if self.closing else list(self.in_flight)
        for id in cut_short:
            self.error(id, "the localsearch server stopped before the request finished", "transport")


def _messages(stdin: BinaryIO, relay: _Relay):
    """The browser's messages until the end of its input; each bad frame gets an error."""
    while True:
        try:
            message = read_message(stdin)
        except FrameError as error:
            relay.error(error.id, f"bad message: {error}")
            if error.ended:
                return
            continue
        if message is None:
            return
        yield message


def _probe(stdin: BinaryIO, relay: _Relay) -> int:
    """``localsearch doctor``'s check of a launcher: the host answers ``ping`` itself, without
    starting a server (which would load the models), until the end of input."""
    from . import __version__
    from .protocol import PROTOCOL_VERSION

    for message in _messages(stdin, relay):
        if message.get("type") == "ping":
            relay.to_browser({"id": message.get("id"), "type": "pong",
                              "data": {"protocol": PROTOCOL_VERSION, "version": __version__, "probe": True}})
        else:
            relay.error(message.get("id"), "this host was started as a probe: it answers ping only")
    return 0


def run_host(argv: list[str], stdin: BinaryIO, stdout: BinaryIO, config: Config | None = None) -> int:
    """Serve one browser connection until its end of input; returns the exit code."""
    config = config or Config.load()
    log = _Log(config)
    relay = _Relay(stdout, log)
    refusal = caller_refusal(argv, config)
    if refusal:
        log(f"refused: {refusal} (arguments {argv!r})")
        relay.error(None, refusal, "refused")
        return 1
    if os.environ.get("LOCALSEARCH_HOST_PROBE") == "1":
        return _probe(stdin, relay)
    try:
        connection = _server_connection(config, log)
    except OSError as error:
        log(f"no server: {error}")
        relay.error(None, f"localsearch could not start its server: {error}", "unavailable")
        return 1
    reader = threading.Thread(target=relay.from_server, args=(connection,), name="localsearch-host-reader",
                              daemon=True)
    reader.start()
    log(f"connected for {argv[0] if argv else '?'}")
    try:
        for message in _messages(stdin, relay):
            id = message.get("id")
            message.pop("client", None)  # the browser is never the user's own command line
            line = json.dumps(message).encode("ascii") + b"\n"  # escapes survive lone surrogates
            if len(line) > MAX_LINE:  # escaped, a frame within its limit can be longer than the server reads
                relay.error(id if isinstance(id, str) else None,
                            f"bad message: a request of {len(line):,} bytes as sent to the server is over the "
                            f"limit of {MAX_LINE:,} bytes; it was not sent")
                continue
            # ping and status are answered in one message: nothing to wait for
            if isinstance(id, str) and len(id) <= 128 and message.get("type") not in ("ping", "status"):
                with relay.lock:
                    relay.in_flight.add(id)
            try:
                connection.sendall(line)
            except OSError as error:
                relay.error(id if isinstance(id, str) else None, f"the localsearch server is gone: {error}",
                            "transport")
                break
    finally:
        # The end of input: the server cancels what this connection still had running.
        relay.closing = True
        try:
            connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        reader.join(timeout=5)
        connection.close()
        log("the browser closed the connection")
    return 0
