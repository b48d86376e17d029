"""Native-messaging framing: messages round trip, long ones go out in parts under the browser's
1 MB limit, and a bad frame costs only itself."""

from __future__ import annotations

import io
import json
import struct

import pytest

from localsearch.native import MAX_TO_BROWSER, FrameError, encode_message, join_parts, read_message, write_message


def frame(body: bytes) -> bytes:
    return struct.pack("=I", len(body)) + body


def test_a_message_round_trips_in_native_byte_order():
    out = io.BytesIO()
    message = {"id": "q1", "type": "ask", "question": "Wie hoch ist der Leuchtturm? ✓"}
    write_message(message, out)
    raw = out.getvalue()
    assert struct.unpack("=I", raw[:4])[0] == len(raw) - 4  # a byte count, not characters
    stream = io.BytesIO(raw)
    assert read_message(stream) == message
    assert read_message(stream) is None  # the end of input


@pytest.mark.parametrize("filler", ["a", "é", "\"\\\n", "\x01"])  # escaping makes JSON longer than its text
def test_a_message_over_1_mb_goes_out_in_parts_that_join_back(filler):
    message = {"id": "q2", "type": "sources", "passages": [{"text": filler * 400_000}] * 3}
    frames = encode_message(message)
    assert len(frames) > 1
    parts = []
    for raw in frames:
        assert len(raw) - 4 <= MAX_TO_BROWSER
        part = read_message(io.BytesIO(raw))
        assert part["type"] == "part" and part["id"] == "q2" and part["of"] == "sources"
        parts.append(part)
    assert all(part["count"] == len(frames) for part in parts)
    assert join_parts(list(reversed(parts))) == message
    with pytest.raises(ValueError, match="incomplete"):
        join_parts(parts[1:])
    assert len(encode_message({"id": "q3", "type": "pong"})) == 1


PING = frame(json.dumps({"id": "p", "type": "ping"}).encode())


@pytest.mark.parametrize("bad, problem", [
    (frame(b"\xff\xfe{}"), "not UTF-8"),
    (frame(b'{"id": "q1", "type": '), "not JSON"),
    (frame(b"[1, 2]"), "a message is a JSON object, not list"),
])
def test_a_bad_frame_is_named_and_the_next_one_is_read(bad, problem):
    stream = io.BytesIO(bad + PING)
    with pytest.raises(FrameError, match=problem) as caught:
        read_message(stream)
    assert not caught.value.ended
    assert read_message(stream) == {"id": "p", "type": "ping"}


def test_a_frame_past_the_limit_is_skipped_byte_for_byte():
    stream = io.BytesIO(frame(b"y" * 100) + PING)
    with pytest.raises(FrameError, match="a frame of 100 bytes is over the limit of 50 bytes; it was skipped"):
        read_message(stream, limit=50)
    assert read_message(stream, limit=50) == {"id": "p", "type": "ping"}


@pytest.mark.parametrize("cut", [b"\x05\x00", frame(b'{"id": "q1"}')[:-3], struct.pack("=I", 10**9) + b"zz"])
def test_input_that_ends_inside_a_frame_says_so(cut):
    with pytest.raises(FrameError) as caught:
        read_message(io.BytesIO(cut))
    assert caught.value.ended and "ended" in str(caught.value)


@pytest.mark.parametrize("body, problem", [
    (b"[" * 100_000, "RecursionError"),
    (b'{"a": ' + b"1" * 5000 + b"}", "ValueError"),
])
def test_json_that_python_cannot_read_is_a_bad_frame_not_a_crash(body, problem):
    stream = io.BytesIO(frame(body) + PING)
    with pytest.raises(FrameError, match=problem):
        read_message(stream)
    assert read_message(stream) == {"id": "p", "type": "ping"}


def test_a_lone_surrogate_from_the_browser_is_sent_on_as_an_escape():
    message = read_message(io.BytesIO(frame(b'{"id": "q", "type": "ask", "question": "\\ud800?"}')))
    (raw,) = encode_message(message)
    assert read_message(io.BytesIO(raw)) == message
    with pytest.raises(ValueError, match="id over"):
        encode_message({"id": "x" * 2000, "type": "error"})


def test_a_number_json_has_not_goes_to_the_browser_as_null():
    (raw,) = encode_message({"id": "n", "type": "sources", "data": {"scores": [0.5, float("nan"), float("inf")]}})
    assert b"NaN" not in raw and b"Infinity" not in raw
    assert read_message(io.BytesIO(raw))["data"]["scores"] == [0.5, None, None]
