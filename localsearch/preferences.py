"""The browser's options: the settings its options page shows and changes, kept by the host in
``preferences.json`` in the data directory (so every browser and profile of this user sees the
same), and applied to every question that comes from the browser, before the request's own
settings. The command line keeps its own defaults in the config file.

The options page is still the browser, the least trusted sender: a value is held to the limits
of a browser request, and a SearXNG address it sets must pass the URL policy (a public address,
or a host the user allowed in ``allowed_hosts``) unless it is the one the config already has.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from .config import Config
from .errors import ConfigError, LocalsearchError
from .private import private_directory

__all__ = ["PREFERENCES", "PreferencesError", "load", "save", "applied"]

# What the options page offers: the choices a browser user makes, never paths or server settings.
PREFERENCES = ("engines", "searxng_url", "max_pages", "llm", "history")
FILE_NAME = "preferences.json"
_saving = threading.Lock()  # a save reads, changes and replaces the file: one at a time


class PreferencesError(LocalsearchError):
    """The preferences cannot be read, or a value cannot be saved."""


def _path(config: Config) -> Path:
    return Path(config.data_dir) / FILE_NAME


def _checked(config: Config, name: str, value, origin: str, check_url: bool = True):
    """The value as the setting takes it, within what the browser may ask for; else PreferencesError.
    ``check_url``: hold a new SearXNG address to the URL policy (when it is set, not each time the
    saved file is read: that resolves its name)."""
    from .protocol import BROWSER_SETTINGS, ProtocolError, check_settings

    try:
        parsed = config.replace(**{name: value})[name]
        # Held to a browser request's limits; searxng_url and history, which a request from the
        # browser may not set, to the length limit (and the URL policy, below).
        check_settings({name: parsed}, "browser" if name in BROWSER_SETTINGS else "cli")
    except (ConfigError, ProtocolError) as error:
        raise PreferencesError(str(error).replace("from code", f"from {origin}")) from None
    if name == "searxng_url" and check_url and parsed and parsed != config.searxng_url:
        if not parsed.lower().startswith(("http://", "https://")):
            raise PreferencesError("searxng_url must be an http or https address")
        from .urlpolicy import UrlPolicy

        refusal = UrlPolicy.from_config(config).check(parsed)
        if refusal:
            raise PreferencesError(f"searxng_url {parsed!r} is refused: {refusal} (a SearXNG on this computer or "
                                   f"your network: add its host to allowed_hosts in the config file)")
    return parsed


def load(config: Config, strict: bool = True) -> dict:
    """The saved preferences: only known names, and a value that cannot be used now is dropped,
    so a file edited by hand cannot stop the browser's questions. A file that cannot be read is
    a PreferencesError, or no preferences when not ``strict``."""
    try:
        saved = json.loads(_path(config).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        if not strict:
            return {}
        raise PreferencesError(f"the browser's preferences in {_path(config)} cannot be read ({error}); "
                               f"save them again from the options page, or delete the file") from None
    kept = {}
    for name, value in (saved.items() if isinstance(saved, dict) else ()):
        if name in PREFERENCES and name in config:
            try:
                kept[name] = _checked(config, name, value, "the preferences file", check_url=False)
            except PreferencesError:
                continue
    return kept


def save(config: Config, changes: dict) -> dict:
    """Check ``changes`` and keep them with the saved ones; a value of None forgets a preference
    (the config's value applies again). Returns what is saved now. Nothing is written when a
    change is refused."""
    unknown = sorted(name for name in changes if name not in PREFERENCES or name not in config)
    if unknown:
        raise PreferencesError(f"{', '.join(unknown)} cannot be set from the browser's options "
                               f"(allowed: {', '.join(name for name in PREFERENCES if name in config)})")
    checked = {name: None if value is None else _checked(config, name, value, "the options page")
               for name, value in changes.items()}
    with _saving:
        kept = load(config, strict=False)  # saving repairs a file that cannot be read
        for name, value in checked.items():
            if value is None:
                kept.pop(name, None)
            else:
                kept[name] = value
        folder = private_directory(config.data_dir)
        # Written whole (created 0600), then renamed over the old file: a crash leaves one or
        # the other, never half.
        handle, temporary = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=folder)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(json.dumps(kept, indent=2) + "\n")
            os.replace(temporary, folder / FILE_NAME)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return kept


def applied(config: Config, settings: dict) -> dict:
    """A browser request's settings: its saved preferences, then what the request itself sets."""
    return {**load(config, strict=False), **settings}
