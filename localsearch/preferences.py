"""The browser's options: the settings its options page shows and changes, kept by the host in
``preferences.json`` in the data directory (so every browser and profile of this user sees the
same), and applied to every question that comes from the browser, before the request's own
settings. The command line keeps its own defaults in the config file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .config import Config
from .errors import ConfigError, LocalsearchError

__all__ = ["PREFERENCES", "PreferencesError", "load", "save", "applied"]

# What the options page offers: the choices a browser user makes, never paths or server settings.
PREFERENCES = ("engines", "searxng_url", "max_pages", "llm", "history")
FILE_NAME = "preferences.json"


class PreferencesError(LocalsearchError):
    """The preferences cannot be read, or a value cannot be saved."""


def _path(config: Config) -> Path:
    return Path(config.data_dir) / FILE_NAME


def load(config: Config, strict: bool = True) -> dict:
    """The saved preferences: only known names, and a value the settings cannot take is dropped,
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
                config.replace(**{name: value})
            except ConfigError:
                continue
            kept[name] = value
    return kept


def save(config: Config, changes: dict) -> dict:
    """Check ``changes`` and keep them with the saved ones; a value of None forgets a preference
    (the config's value applies again). Returns what is saved now."""
    unknown = sorted(name for name in changes if name not in PREFERENCES or name not in config)
    if unknown:
        raise PreferencesError(f"{', '.join(unknown)} cannot be set from the browser's options "
                               f"(allowed: {', '.join(name for name in PREFERENCES if name in config)})")
    kept = load(config, strict=False)  # saving repairs a file that cannot be read
    for name, value in changes.items():
        if value is None:
            kept.pop(name, None)
            continue
        try:
            config.replace(**{name: value})
        except ConfigError as error:
            raise PreferencesError(str(error).replace("from code", "from the options page")) from None
        if name == "searxng_url" and value and not value.lower().startswith(("http://", "https://")):
            raise PreferencesError("searxng_url must be an http or https address")
        kept[name] = value
    path = _path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole, then renamed over the old file: a crash leaves one or the other, never half.
    temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    temporary.write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")
    temporary.chmod(0o600)
    os.replace(temporary, path)
    return kept


def applied(config: Config, settings: dict) -> dict:
    """A browser request's settings: its saved preferences, then what the request itself sets."""
    return {**load(config, strict=False), **settings}
