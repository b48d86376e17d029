"""Native-messaging framing: how the browser and ``localsearch host`` exchange messages.

Each message is a 32-bit length (bytes) in native byte order, then that many bytes of UTF-8
JSON. The browser may send up to 4 GB; the host may send at most 1 MB per message, so a longer
message goes out as ``part`` messages that the extension joins in order (see docs/protocol.md).
A bad frame costs only itself: its bytes are consumed, the error names the problem, and the
next frame is read as usual.
"""

from __future__ import annotations

import json
import struct
import sys
from typing import BinaryIO

from .events import finite

__all__ = ["MAX_TO_BROWSER", "MAX_FROM_BROWSER", "FrameError", "read_message", "encode_message", "join_parts",
           "write_message"]

MAX_TO_BROWSER = 1024 * 1024  # bytes of one message the browser accepts from a host (the frame's JSON)
MAX_FROM_BROWSER = 64 * 1024 * 1024  # bytes of one request we read: a rendered page fits (protocol.MAX_HTML)
PART_CHARS = 256 * 1024  # characters of JSON text in one part, before the check that it fits
_LENGTH = struct.Struct("=I")  # native byte order, as the browser writes it
_DISCARD_CHUNK = 1024 * 1024


class FrameError(ValueError):
    """A frame that could not be read as a message. ``id`` is the request's when one could be
    read; ``ended`` is true when the input ended inside the frame (nothing more will come)."""

    def __init__(self, message: str, id: str | None = None, ended: bool = False):
        super().__init__(message)
        self.id, self.ended = id, ended


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_message(stream: BinaryIO, limit: int = MAX_FROM_BROWSER):
    """The next message from ``stream`` (decoded JSON), or None at the end of input.

    Raises FrameError for a frame that is too long (its bytes are skipped), not UTF-8, not JSON
    or not an object; or one cut short by the end of input (``ended``)."""
    header = _read_exactly(stream, _LENGTH.size)
    if not header:
        return None
    if len(header) < _LENGTH.size:
        raise FrameError(f"the input ended inside a frame's length ({len(header)} of 4 bytes)", ended=True)
    (length,) = _LENGTH.unpack(header)
    if length > limit:
        skipped = _skip(stream, length)
        if skipped < length:
            raise FrameError(f"a frame of {length} bytes is over the limit of {limit}, and the input ended "
                             f"after {skipped}", ended=True)
        raise FrameError(f"a frame of {length} bytes is over the limit of {limit} bytes; it was skipped")
    body = _read_exactly(stream, length)
    if len(body) < length:
        raise FrameError(f"the input ended inside a frame ({len(body)} of {length} bytes)", ended=True)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FrameError(f"a frame is not UTF-8 ({error.reason} at byte {error.start})") from None
    try:
        message = json.loads(text)
    except json.JSONDecodeError as error:
        raise FrameError(f"a frame is not JSON ({error.msg} at character {error.pos})") from None
    except (ValueError, RecursionError) as error:  # a number of 5,000 digits, arrays 100,000 deep
        raise FrameError(f"a frame's JSON cannot be read ({type(error).__name__}: {str(error)[:100]})") from None
    if not isinstance(message, dict):
        raise FrameError(f"a message is a JSON object, not {type(message).__name__}")
    return message


def _skip(stream: BinaryIO, size: int) -> int:
    """Reads and drops ``size`` bytes (or until the end of input); returns how many it dropped."""
    dropped = 0
    while dropped < size:
        chunk = stream.read(min(_DISCARD_CHUNK, size - dropped))
        if not chunk:
            break
        dropped += len(chunk)
    return dropped


def _frame(text: str) -> bytes:
    body = text.encode("utf-8")
    return _LENGTH.pack(len(body)) + body


def encode_message(message: dict, limit: int = MAX_TO_BROWSER) -> list[bytes]:
    """The frames that carry ``message`` to the browser: one, or ``part`` messages of at most
    ``limit`` bytes each when it is longer (a page's passages, a long answer)."""
    # ASCII escapes: a lone surrogate the browser sent (a JS slice through an emoji) stays JSON.
    try:
        text = json.dumps(message, separators=(",", ":"), allow_nan=False)
    except ValueError:  # NaN or infinity, which the browser's JSON.parse refuses: null
        text = json.dumps(finite(message), separators=(",", ":"), allow_nan=False)
    frame = _frame(text)
    if len(json.dumps(message.get("id"))) > 1024:
        raise ValueError("a message id over 1,024 characters cannot be sent to the browser")
    if len(frame) - _LENGTH.size <= limit:
        return [frame]
    pieces, start = [], 0
    while start < len(text):
        size = min(PART_CHARS, len(text) - start)
        while True:  # escaping can make a piece longer than its characters: halve until it fits
            part = _frame(json.dumps({"id": message.get("id"), "type": "part", "of": message.get("type"),
                                      "index": len(pieces), "count": 0, "text": text[start:start + size]},
                                     ensure_ascii=False, separators=(",", ":")))
            # 16 bytes to spare: the real count, written below, has more digits than this 0.
            if len(part) - _LENGTH.size + 16 <= limit or size == 1:
                break
            size //= 2
        pieces.append(text[start:start + size])
        start += size
    return [_frame(json.dumps({"id": message.get("id"), "type": "part", "of": message.get("type"), "index": i,
                               "count": len(pieces), "text": piece}, ensure_ascii=False, separators=(",", ":")))
            for i, piece in enumerate(pieces)]


def join_parts(parts: list[dict]) -> dict:
    """The message that ``part`` messages carried (what the extension does, for tests and the CLI)."""
    ordered = sorted(parts, key=lambda part: part["index"])
    if not ordered or [p["index"] for p in ordered] != list(range(ordered[0]["count"])):
        raise ValueError("the parts of a message are incomplete")
    return json.loads("".join(part["text"] for part in ordered))


def write_message(message: dict, stream: BinaryIO | None = None) -> None:
    """Write ``message`` to ``stream`` (stdout's bytes by default) as frames, and flush."""
    stream = stream if stream is not None else sys.stdout.buffer
    for frame in encode_message(message):
        stream.write(frame)
    stream.flush()
