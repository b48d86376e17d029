"""Settings: defaults, then the TOML config file, then ``LOCALSEARCH_*`` environment variables,
then command-line flags; later sources win.

The core declares its own settings here; plugins add theirs through ``register_settings``.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["Config", "Setting", "config_path", "default_data_dir", "is_secret", "redact"]

APP_NAME = "localsearch"


@dataclass
class Setting:
    name: str
    default: Any
    help: str
    owner: str = "core"  # or the name of the plugin that declared it
    minimum: float = 0  # numbers below it (and NaN, infinity) are refused


def config_path() -> Path:
    """Where the config file lives: ``LOCALSEARCH_CONFIG`` or the user's config directory."""
    if os.environ.get("LOCALSEARCH_CONFIG"):
        return Path(os.environ["LOCALSEARCH_CONFIG"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_data_dir() -> str:
    import platformdirs

    return platformdirs.user_data_dir(APP_NAME)


CORE_SETTINGS = [
    Setting("engines", ["duckduckgo", "local"], "search engines to ask, by name"),
    Setting("fallback_engines", [], "engines tried one after another, in this order, when those of `engines` "
                                    "give no results (they failed, were rate-limited or blocked, or found nothing)"),
    Setting("offline", False, "answer from the local index only: no search, no fetch"),
    Setting("max_pages", 5, "how many search results to fetch and read", minimum=1),
    Setting("top_k", 6, "how many passages the answer is built from", minimum=1),
    Setting("results_per_engine", 8, "results asked of each search engine", minimum=1),
    Setting("fetch_concurrency", 32, "pages fetched at the same time", minimum=1),
    Setting("fetch_timeout", 10.0, "seconds one page may take to download (whatever plugin fetches it)"),
    Setting("search_timeout", 10.0, "seconds an engine may take before it is reported as timed out"),
    Setting("freshness_hours", 24.0, "a cached page younger than this is not fetched again"),
    Setting("allowed_hosts", [], "hosts, IPs or CIDRs (optionally with :port) that pages may be fetched from even "
                                "though they are private or local, e.g. 10.0.0.0/8 or intranet.example"),
    Setting("allowed_folders", [], "folders (absolute paths, ~ allowed) of your own files that plugins may read as "
                                   "file: URLs, e.g. a search engine over your notes; nothing outside them"),
    Setting("data_dir", "", "where the index and page cache live (empty: the user data directory)"),
    Setting("use_server", True, "send questions to a running `localsearch serve` (models kept warm)"),
    Setting("start_server", True, "after answering in its own process, `localsearch ask` at a terminal starts "
            "`localsearch serve` in the background when none runs, so the next question is warm (it stops after "
            "server_idle_minutes without a client); false: each ask loads everything itself"),
    Setting("loaded_models", 2, "most language models (and embedders) kept loaded at once; the least recently "
                                "used is unloaded", minimum=1),
    Setting("serve_workers", 2, "questions `localsearch serve` works on at once", minimum=1),
    Setting("serve_queue", 8, "questions that may wait for a worker; past it a request gets a 'busy' error"),
    Setting("server_idle_minutes", 30.0, "a server started by the browser's host or by `ask` stops after this "
            "many minutes without a client (0: never)"),
    Setting("host_extensions", [], "ids of other browser extensions that may use the native-messaging host "
            "(Chromium's 32-letter id, or a Firefox add-on id)"),
    Setting("history", True, "keep each question, its answer, citations and sources in the history (history.sqlite3 "
            "in the data directory), for follow-ups and `localsearch history`; false: keep nothing new"),
    Setting("llm", True, "let the language model write the answer (false: extractive answer only)"),
    Setting("bundled_model", False, "let the bundled model (SmolLM2-135M) write the answer when no other model is "
            "set; off because on the real-page sets it changes no answer and costs seconds (docs/benchmarks.md, "
            "benchmark 7): a bigger model (--model, llm_url) writes the answer whatever this says"),
    Setting("max_tokens", 128, "most tokens the language model may write (an answer of two or three sentences "
            "with citations takes about 80)"),
    Setting("temperature", 0.2, "sampling temperature of the language model"),
    Setting("candidate_factor", 5, "passages searched for answer sentences: top_k times this", minimum=1),
    Setting("keyword_weight", 0.35, "share of a sentence's score from the question's words (the rest: meaning)"),
    Setting("answer_kind_bonus", 0.15, "added to a sentence's score when it has the kind of answer the "
                                      "question asks for: a number for 'how many', a name for 'who'"),
    Setting("section_name_bonus", 0.15, "added to a sentence's score when its section is named for something "
                                       "the question names (max_connections, push.default, --depth, age())"),
    Setting("definition_bonus", 0.15, "added to a sentence's score when it defines what a 'what is X' question "
                                     "asks about: X's glossary or list entry, an 'X is ...' sentence, the first "
                                     "sentence under a heading that names X"),
    Setting("search_rank_bonus", 0.1, "added to a sentence's score for its page's place in the search results: "
                                     "all of it for the first page (or the page the browser asks about), a share "
                                     "falling to nothing past the last"),
    Setting("answer_from_evidence", True, "the model's answer stands only if what a source supports in it "
                                         "rests on the extractive answer's sentences (off: on any source sentence)"),
    Setting("prompt_chars", 1600, "most characters of source text put into the prompt"),
    Setting("ocr_images", False, "read the text in the images of the pages a search finds (OCR; about 1-2 s an "
            "image on 2 cores; needs the image extra) and cite it like the page's own text"),
    Setting("ocr_page_images", True, "read the text in the images of a page the browser sends with 'ask about "
            "this page'"),
    Setting("images_per_question", 5, "most images read for one question (the largest first)"),
    Setting("image_seconds", 15.0, "most seconds one question spends reading images; the rest are left unread"),
    Setting("image_max_bytes", 5_000_000, "larger images are not read (checked while they download)", minimum=1),
    Setting("image_min_side", 100, "images the page shows smaller than this many pixels wide or high are not read "
            "(icons, bullets, spacers)"),
    Setting("min_words", 20, "pages whose main text has fewer words are skipped as 'no content'"),
    Setting("support_threshold", 0.5, "similarity below which a cited sentence is flagged unsupported"),
]


SECRET_SUFFIXES = ("_api_key", "_key", "_token", "_password", "_secret")


def is_secret(name: str) -> bool:
    """Whether a setting holds a credential, which no output shows."""
    return name.endswith(SECRET_SUFFIXES)


_SECRET_VALUES: set[str] = set()  # the value of every secret setting this process has read


def _looks_like_a_key(value: Any) -> bool:
    """A value worth hiding wherever it appears: long and not a word. The placeholders local
    servers take ("ollama", "lm-studio", "sk-no-key-required") would blank out ordinary text."""
    return isinstance(value, str) and len(value) >= 12 and (any(c.isdigit() for c in value) or len(value) >= 32)


def redact(value: Any) -> Any:
    """``value`` (a string, or a message's data) with the value of every secret setting this
    process has read replaced by "(hidden)": what every message and log line passes through, so
    a key cannot leak even when a server echoes it back in an error."""
    if not _SECRET_VALUES:
        return value
    if isinstance(value, str):
        for secret in _SECRET_VALUES:
            if secret in value:
                value = value.replace(secret, "(hidden)")
        return value
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    return value


def _shown(name: str, raw: Any) -> str:
    return "(hidden)" if is_secret(name) else repr(raw)


def _parse(setting: Setting, raw: Any, origin: str) -> Any:
    """Coerce ``raw`` to the type of the setting's default; strings (env, flags) are parsed."""
    value = _coerce(setting.name, raw, setting.default, origin)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not (setting.minimum <= value < math.inf):
        raise ConfigError(f"setting {setting.name!r} from {origin}: {_shown(setting.name, raw)} is not valid "
                          f"(expected a finite number of at least {setting.minimum:g})")
    return value


def _coerce(name: str, raw: Any, default: Any, origin: str) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in {"1", "true", "yes", "on"}:
                return True
            if isinstance(raw, str) and raw.strip().lower() in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError("expected true or false")
        if isinstance(default, int):
            if isinstance(raw, bool) or isinstance(raw, float):
                raise ValueError("expected a whole number")
            return int(raw)
        if isinstance(default, float):
            if isinstance(raw, bool):
                raise ValueError("expected a number")
            return float(raw)
        if isinstance(default, list):
            if isinstance(raw, str):
                return [item.strip() for item in raw.split(",") if item.strip()]
            if isinstance(raw, (list, tuple)) and all(isinstance(item, str) for item in raw):
                return list(raw)
            raise ValueError("expected a list of strings")
        if isinstance(default, str):
            if not isinstance(raw, str):
                raise ValueError("expected a string")
            return raw
    except (TypeError, ValueError) as error:
        raise ConfigError(f"setting {name!r} from {origin}: {_shown(name, raw)} is not valid ({error})") from None
    return raw


def _declared_settings() -> tuple[list[Setting], list[tuple[str, str]]]:
    """The core settings and those of every loaded plugin, with the problems as
    ``(plugin name, message)``.

    Each plugin's ``register_settings`` is called on its own: one that raises is a problem and
    declares nothing (not even what it registered before raising). A setting declared again is a
    problem naming both sides; the first declaration stays (a core setting always does).
    """
    from .plugins import implementations, load_plugins

    load_plugins()
    settings = list(CORE_SETTINGS)
    declared_by = {s.name: "core" for s in settings}
    problems: list[tuple[str, str]] = []
    for plugin_name, call in implementations("register_settings"):
        mine: list[Setting] = []

        def register(name: str, default: Any, help: str = "") -> None:
            if not isinstance(name, str) or not name:
                raise TypeError(f"a setting name must be a non-empty string, not {name!r}")
            mine.append(Setting(name, default, help, owner=plugin_name))

        try:
            call(register=register)
        except Exception as error:
            problems.append((plugin_name, f"plugin {plugin_name!r}: register_settings failed "
                                          f"({type(error).__name__}: {error}); its settings are not declared"))
            continue
        for setting in mine:
            first = declared_by.get(setting.name)
            if first is None:
                declared_by[setting.name] = plugin_name
                settings.append(setting)
            elif first == "core":
                problems.append((plugin_name, f"plugin {plugin_name!r} declares setting {setting.name!r}, which is a "
                                              f"core setting; the core's is kept"))
            elif first == plugin_name:
                problems.append((plugin_name, f"plugin {plugin_name!r} declares setting {setting.name!r} twice; "
                                              f"the first is kept"))
            else:
                problems.append((plugin_name, f"setting {setting.name!r} is declared by plugins {first!r} and "
                                              f"{plugin_name!r}; the one of plugin {first!r} is kept"))
    return settings, problems


class Config:
    """Effective settings. Read them as attributes (``config.top_k``) or ``config["top_k"]``."""

    def __init__(self, settings: list[Setting], values: dict[str, Any], origins: dict[str, str],
                 warnings: list[str] | None = None):
        object.__setattr__(self, "_settings", {s.name: s for s in settings})
        object.__setattr__(self, "_values", values)
        _SECRET_VALUES.update(v for name, v in values.items() if is_secret(name) and _looks_like_a_key(v))
        object.__setattr__(self, "_origins", origins)
        # What loading let pass with a warning (front ends print these); a plain attribute, so a
        # setting named "warnings" is read as config["warnings"].
        object.__setattr__(self, "warnings", list(warnings or []))

    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None, *, path: Path | None = None,
             environ: dict[str, str] | None = None) -> "Config":
        """Build the configuration from every source; ``overrides`` are command-line flags.

        What a plugin or the config file gets wrong but the rest can do without (a raising
        ``register_settings``, a setting declared twice, a setting in the file that no loaded
        plugin declares) is collected in ``warnings``; a malformed value is a ``ConfigError``.
        """
        settings, problems = _declared_settings()
        warnings = [message for _, message in problems]
        by_name = {s.name: s for s in settings}
        values = {s.name: s.default for s in settings}
        origins = {s.name: "default" for s in settings}

        path = path or config_path()
        if path.exists():
            try:
                from_file = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
                raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
            except OSError as error:
                raise ConfigError(f"cannot read config file {path}: {error.strerror or error}") from None
            for name, raw in from_file.items():
                if name not in by_name:
                    # Often a setting of a plugin that is not loaded now: not worth failing every command.
                    warnings.append(f"config file {path}: unknown setting {name!r} is ignored (no loaded plugin "
                                    f"declares it; `localsearch config` lists the known ones)")
                    continue
                values[name] = _parse(by_name[name], raw, str(path))
                origins[name] = str(path)

        environ = os.environ if environ is None else environ
        for setting in settings:
            key = "LOCALSEARCH_" + setting.name.upper()
            if key in environ:
                values[setting.name] = _parse(setting, environ[key], key)
                origins[setting.name] = key

        for name, raw in (overrides or {}).items():
            if raw is None:
                continue
            if name not in by_name:
                raise ConfigError(f"unknown setting {name!r}")
            values[name] = _parse(by_name[name], raw, "command line")
            origins[name] = "command line"

        if not values["data_dir"]:
            values["data_dir"] = default_data_dir()
        return cls(settings, values, origins, warnings)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Config is read-only; use replace()")

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def __contains__(self, name: str) -> bool:
        """Whether a setting of this name is declared (by the core or a loaded plugin)."""
        return name in self._settings

    def replace(self, **changes: Any) -> "Config":
        """A copy with some values changed (validated like flags)."""
        values, origins = dict(self._values), dict(self._origins)
        for name, raw in changes.items():
            if name not in self._settings:
                raise ConfigError(f"unknown setting {name!r}")
            values[name] = _parse(self._settings[name], raw, "code")
            origins[name] = "code"
        return Config(list(self._settings.values()), values, origins, self.warnings)

    def describe(self, reveal: bool = True) -> list[dict[str, Any]]:
        """Every setting with its value, where the value came from, and what it does; with
        ``reveal`` false, a secret's value (an API key, a token) is shown only as set or not."""
        return [
            {"name": s.name, "value": self._values[s.name] if reveal or not is_secret(s.name)
             else ("(set)" if self._values[s.name] else ""), "origin": self._origins[s.name],
             "default": s.default, "help": s.help, "owner": s.owner}
            for s in self._settings.values()
        ]
