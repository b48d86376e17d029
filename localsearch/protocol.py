"""The request protocol every front end speaks (documented in docs/protocol.md, which a test
checks against this module): request types and their fields, the messages sent back, and what
each kind of client may change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .config import redact
from .events import EVENT_TYPES

__all__ = ["PROTOCOL_VERSION", "Field", "REQUESTS", "PAGE_FIELDS", "MESSAGES", "MESSAGE_TYPES", "CLIENTS",
           "CONTROL_REQUESTS", "DATA_REQUESTS", "IMAGE_REQUESTS", "MAX_IMAGE",
           "BROWSER_SETTINGS", "SERVER_SETTINGS", "ProtocolError", "check_request", "check_settings", "message",
           "error_message"]

PROTOCOL_VERSION = 1
MAX_HTML = 10_000_000  # characters of a page the browser sends; a longer one is refused
MAX_IMAGE = 20_000_000  # characters of base64 of an image the browser sends (15 MB): a frame holds 64 MiB


@dataclass(frozen=True)
class Field:
    """One field of a request: its JSON type, whether it must be there, and its largest size
    (characters of a string, items of a list, keys of an object, value of a whole number)."""

    kind: type
    required: bool = False
    limit: int | None = None
    help: str = ""


_QUESTION = Field(str, True, 2000, "the question")
_SETTINGS = Field(dict, False, 40, "settings for this request only (what a client may change: see below)")
_CONVERSATION = Field(list, False, 20, "earlier turns, oldest first: objects with `question` and `answer` "
                                       "(and `messages`, `reply` from an earlier `answer` message's `turn`); "
                                       "for a client that keeps its own history")
_CONVERSATION_ID = Field(str, False, 64, "continue this conversation of the history (the `conversation_id` of "
                                         "an earlier `answer` message); without it, a question begins a new one")

COMMON = {
    "id": Field(str, True, 128, "chosen by the client; every message back carries it"),
    "type": Field(str, True, 32, "one of the request types below"),
}
PAGE_FIELDS = {
    "url": Field(str, True, 4096, "the page's address (http or https); it is cited, not fetched"),
    "title": Field(str, False, 1000, "the page's title"),
    "html": Field(str, True, MAX_HTML, "the page's HTML as rendered (`document.documentElement.outerHTML`)"),
    "selection": Field(str, False, 20000, "text the user selected: sentences about it rank higher"),
}
REQUESTS: dict[str, dict[str, Field]] = {
    "ask": {"question": _QUESTION, "conversation_id": _CONVERSATION_ID, "conversation": _CONVERSATION,
            "settings": _SETTINGS},
    "ask_page": {"question": _QUESTION, "page": Field(dict, True, len(PAGE_FIELDS), "the page the browser shows: "
                                                      + ", ".join(f"`{name}`" for name in PAGE_FIELDS)),
                 "search": Field(bool, False, None, "also search the web (default: answer from the page alone)"),
                 "conversation_id": _CONVERSATION_ID, "conversation": _CONVERSATION, "settings": _SETTINGS},
    "search": {"query": Field(str, True, 2000, "what to find"), "settings": _SETTINGS},
    "index": {"urls": Field(list, True, 500, "URLs to fetch and index (`file:` URLs from the command line only)"),
              "refresh": Field(bool, False, None, "fetch again even if the cached copy is fresh")},
    "history": {"limit": Field(int, False, 500, "most conversations to list (default 50), newest first"),
                "offset": Field(int, False, 10**9, "conversations to skip (the next page of the list)"),
                "query": Field(str, False, 500, "only conversations with a question or answer containing this")},
    "conversation": {"conversation_id": Field(str, True, 64, "the conversation to reopen")},
    "delete": {"conversation_id": Field(str, False, 64, "the conversation to delete"),
               "all": Field(bool, False, None, "delete every conversation (instead of `conversation_id`)")},
    "preferences": {"set": Field(dict, False, 10, "preferences to change first (a value of null forgets one); "
                                                  "without it, the request only reads them")},
    "image_text": {"image": Field(str, False, MAX_IMAGE, "the image's bytes, base64 (or a `data:` URL)"),
                   "url": Field(str, False, 4096, "where the image is; fetched under the URL policy when `image` "
                                                  "is not sent"),
                   "page_url": Field(str, False, 4096, "the page it is on")},
    "image_run": {"tool": Field(str, True, 100, "the image tool to run (see `image_tools`)"),
                  "image": Field(str, False, MAX_IMAGE, "the image's bytes, base64 (or a `data:` URL)"),
                  "url": Field(str, False, 4096, "where the image is; fetched under the URL policy when `image` "
                                                 "is not sent"),
                  "mask": Field(str, False, MAX_IMAGE, "for a tool that takes one: base64 of an image of the same "
                                                       "size, white where the picture is to be filled in"),
                  "options": Field(dict, False, 20, "the tool's options, by name")},
    "image_tools": {},
    "cancel": {"target": Field(str, True, 128, "the `id` of a request of the same connection")},
    "status": {},
    "ping": {},
}
# Messages back: every pipeline event, plus the answers to `status` and `ping`.
MESSAGES = {
    "stage_start": "a stage began: `stage` (load, plan, search, fetch, extract, images, retrieve, answer, verify; index in an "
                   "`index` request)",
    "stage_end": "a stage ended: `stage`, `seconds`, and what it did (`pages`, `results`, `first_token` ...)",
    "search_results": "the fused results (`results`) and each engine's outcome (`engines`: `status` ok, empty, "
                      "rate-limited, blocked, error or timeout, `count`, `seconds`, `error`, and `fallback` for an "
                      "engine of `fallback_engines` that was tried)",
    "page": "one URL's status: `url`, `status` (ok, cached, blocked, timeout, too large, not HTML, HTTP error, "
            "redirect loop, error, no content), `reason`, `title`; read pages also `chars` (of text) and `size` "
            "(characters of HTML), and `images` when their text was to be read: each `url`, `status` (ok, skipped, "
            "unreadable, no text, or a fetch status), `reason`, `lines`, `seconds`",
    "sources": "the numbered `sources` and the best `passages` (all a `search` request returns)",
    "extractive_answer": "the answer made of the source sentence that answers (two when the second adds to it), "
                         "in the `answer` shape, at once",
    "answer_delta": "a piece of the model's answer as it is written (`text`), not yet checked",
    "answer": "the checked answer, in the shape of `localsearch ask --json` (see README: `short_answer` is "
              "the direct answer, `{\"text\", \"n\"}`, verbatim from source n, or null; an empty `answer` says "
              "nothing read answers the question), plus "
              "`conversation_id` and `position` (the turn's number in it) when the history keeps it, and `turn`: "
              "what a follow-up request sends back in `conversation`",
    "warning": "a problem that costs part of the work, not the request: `message`, `stage`",
    "status": "the server's state: `protocol`, `version`, `pid`, `running`, `waiting`, `workers`, `queue`, "
              "`loaded` (models held), `indexing` (pages read, waiting to be stored), `data_dir`, `uptime`",
    "pong": "the answer to `ping`: `protocol`, `version`",
    "conversations": "the answer to `history`: `conversations` (each `id`, `title` (its first question), `client`, "
                     "`created`, `updated` (seconds since 1970), `turns`), `total` (how many match) and `enabled` "
                     "(whether new questions are kept)",
    "conversation": "the answer to `conversation`: `id`, `title`, `client`, `created`, `updated` and `turns`, "
                    "each `position`, `question`, `created` and `answer` (the data of its `answer` message)",
    "preferences": "the answer to `preferences`: `values` (what the browser's questions use), `saved` (the "
                   "values the options page set, which override the config's), `help` (what each does) and "
                   "`engines` (the search engines installed)",
    "image_text": "the answer to `image_text`: `lines` (each `text`, `box` (four [x, y] corners in the image's "
                  "pixels), `confidence` and `kind`), `text` (the lines, one per line) and `problems`",
    "image_result": "the answer to `image_run`: `tool`, `image` (base64 of the PNG made), `type`, `width`, `height`",
    "image_tools": "the answer to `image_tools`: `tools`, each `name`, `family`, `description`, `options` (name: "
                   "default) and `mask` (whether it takes one)",
    "done": "the request finished (`timings`; `ask`, `ask_page`, `search`: `requests`, every request the question "
            "sent out; an `index` request: `pages` and `passages`; `cancel`: "
            "`cancelled`, whether there was such a request; `delete`: `deleted`, how many conversations)",
    "error": "the request failed: `message`, `kind` (protocol, busy, cancelled, internal, ...); it ends the stream",
}
MESSAGE_TYPES = tuple(MESSAGES)
assert set(MESSAGE_TYPES) == set(EVENT_TYPES) | {"status", "pong", "conversations", "conversation",
                                                  "preferences", "image_text", "image_result", "image_tools"}, \
    "every event type is a documented message"
# Requests answered at once, beside the questions being worked on (they never wait for a worker);
# those that read or write files of the data directory, each on a thread of its own.
DATA_REQUESTS = ("history", "conversation", "delete", "preferences", "image_tools")
# Requests worked on like questions (a worker each, the same queue), with no pipeline.
IMAGE_REQUESTS = ("image_text", "image_run")
CONTROL_REQUESTS = ("ping", "status", "cancel", *DATA_REQUESTS)
CLIENTS = ("browser", "cli")

# What a request may change depends on who sent it. The browser (through the native-messaging
# host) gets per-question choices only; paths, model files, server URLs and the data directory
# stay the server's own. (Its options page may also choose the SearXNG address, under the URL
# policy, and turn the history off or on: preferences.py.) The user's CLI may change any setting
# but the ones that decide which server and which data it is talking to.
BROWSER_SETTINGS = ("engines", "max_pages", "top_k", "results_per_engine", "llm", "offline", "max_tokens",
                    "temperature")
# What the browser may ask for at most: a page must not make the server read a thousand pages.
BROWSER_LIMITS = {"max_pages": 20, "top_k": 50, "results_per_engine": 50, "max_tokens": 2048, "temperature": 2.0}
SETTING_VALUE_LIMIT = 1000  # characters of a string value, items of a list value, from any client
SERVER_SETTINGS = ("data_dir", "use_server", "start_server", "serve_workers", "serve_queue", "loaded_models",
                   "server_idle_minutes", "host_extensions")


_ID = re.compile(r"[A-Za-z0-9]{1,64}")


def message(id: str | None, type: str, data: dict | None = None) -> dict:
    """One message back to a client: ``{"id", "type", "data"}``, no secret setting's value in it."""
    return {"id": id, "type": type, "data": redact(data or {})}


def error_message(id: str | None, text: str, kind: str) -> dict:
    """The ``error`` message that ends a request's stream (or answers a line no request could
    be read from, with ``id`` None)."""
    return message(id, "error", {"message": text, "kind": kind, "fatal": True})


class ProtocolError(ValueError):
    """A request that does not follow the protocol; ``id`` is the request's, if one could be read."""

    def __init__(self, message: str, id: str | None = None):
        super().__init__(message)
        self.id = id


def check_request(request) -> tuple[str, str, dict]:
    """(id, type, fields) of a well-formed request, else ProtocolError naming the problem."""
    if not isinstance(request, dict):
        raise ProtocolError(f"a request is a JSON object, not {_json_type(request)}")
    id = request.get("id")
    readable_id = id if isinstance(id, str) and len(id) <= 128 else None
    try:
        _check_fields(request, {**COMMON}, "request", strict=False)
        kind = request["type"]
        if kind not in REQUESTS:
            raise ProtocolError(f"unknown request type {kind!r} (known: {', '.join(REQUESTS)})")
        fields = {k: v for k, v in request.items() if k not in COMMON}
        _check_fields(fields, REQUESTS[kind], f"{kind} request")
        if kind == "ask_page":
            _check_fields(fields["page"], PAGE_FIELDS, "page")
        if isinstance(fields.get("conversation_id"), str) and not _ID.fullmatch(fields["conversation_id"]):
            raise ProtocolError("conversation_id must be a conversation's id (letters and digits)")
        if fields.get("conversation_id") is not None and fields.get("conversation") is not None:
            raise ProtocolError("send either conversation_id (the history keeps the turns) or conversation "
                                "(the turns themselves), not both")
        if kind == "delete" and (fields.get("conversation_id") is None) == (not fields.get("all")):
            raise ProtocolError("a delete request names a conversation_id, or sets all to true (not both)")
        if kind == "index" and not all(isinstance(url, str) and 0 < len(url) <= 4096 for url in fields["urls"]):
            raise ProtocolError("urls must be a list of URL strings (at most 4096 characters each)")
    except ProtocolError as error:
        error.id = readable_id
        raise
    return id, kind, fields


def _check_fields(values: dict, spec: dict[str, Field], what: str, strict: bool = True) -> None:
    what = f"{'an' if what[0] in 'aeiou' else 'a'} {what}"
    if strict:
        unknown = sorted(set(values) - set(spec))
        if unknown:
            raise ProtocolError(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in {what}"
                                f" (known: {', '.join(spec) or 'none'})")
    for name, field in spec.items():
        if name not in values or values[name] is None:
            if field.required:
                raise ProtocolError(f"{what[0].upper()}{what[1:]} lacks the field {name!r}")
            continue
        value = values[name]
        if not isinstance(value, field.kind) or (field.kind is not bool and isinstance(value, bool)):
            raise ProtocolError(f"field {name!r} of {what} must be {_json_name(field.kind)}, not {_json_type(value)}")
        if field.kind is int:
            if not 0 <= value <= (field.limit or value):
                raise ProtocolError(f"field {name!r} of {what} must be between 0 and {field.limit:,}, not {value}")
        elif field.limit is not None and len(value) > field.limit:
            unit = {str: "characters", list: "items", dict: "keys"}[field.kind]
            raise ProtocolError(f"field {name!r} of {what} is too long: {len(value):,} {unit}, "
                                f"at most {field.limit:,}")


def check_settings(settings: dict, client: str) -> None:
    """Refuse settings this client may not change, or not that far (their values' types are
    checked when they are applied)."""
    for name, value in settings.items():
        if name in SERVER_SETTINGS:
            raise ProtocolError(f"setting {name!r} belongs to the server and cannot be changed by a request")
        if client == "browser" and name not in BROWSER_SETTINGS:
            raise ProtocolError(f"setting {name!r} cannot be changed from the browser "
                                f"(allowed: {', '.join(BROWSER_SETTINGS)})")
        if isinstance(value, (str, list)) and len(value) > SETTING_VALUE_LIMIT:
            raise ProtocolError(f"setting {name!r} is too long (at most {SETTING_VALUE_LIMIT:,})")
        limit = BROWSER_LIMITS.get(name)
        if client == "browser" and limit is not None and isinstance(value, (int, float)) \
                and not isinstance(value, bool) and value > limit:
            raise ProtocolError(f"setting {name!r} may be at most {limit:g} from the browser")


def _json_name(kind: type) -> str:
    return {str: "a string", bool: "true or false", int: "a whole number", list: "a list", dict: "an object"}[kind]


def _json_type(value) -> str:
    if value is None:
        return "null"
    return {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)
