"""The loaded parts a question uses (embedder, vector store, answer model), shared by every
pipeline of the process and bounded in number.

A component is built by its plugin hook from the question's settings and kept under the
settings that plugin actually read while building it: a question that changes ``top_k``
reuses the loaded model, one with another ``--model`` gets its own, and when more than
``loaded_models`` of a kind are held the least recently used one is closed. So a long-running
server's memory does not grow with every distinct setting a client sends.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from .errors import LocalsearchError, PluginError
from .plugins import pm

__all__ = ["component", "embedder", "store", "chat_model", "loaded", "clear"]

_cache: OrderedDict[tuple, Any] = OrderedDict()  # (kind, read settings, arguments) -> component
_building: dict[str, threading.Lock] = {}
_lock = threading.Lock()


class _Recorder:
    """A read-only view of a Config that notes which settings are read through it."""

    def __init__(self, config):
        object.__setattr__(self, "_config", config)
        object.__setattr__(self, "read", {})

    def __getattr__(self, name):
        value = getattr(self._config, name)
        if not name.startswith("_") and not callable(value):
            self.read[name] = value
        return value

    def __getitem__(self, name):
        value = self._config[name]
        self.read[name] = value
        return value

    def get(self, name, default=None):
        value = self._config.get(name, default)
        self.read[name] = value
        return value

    def __setattr__(self, name, value):
        raise AttributeError("Config is read-only; use replace()")


def _key(kind: str, read: dict, arguments: tuple) -> tuple:
    return (kind, tuple(sorted((name, repr(value)) for name, value in read.items())), arguments)


def component(kind: str, config, build, *arguments):
    """The component of ``kind`` (a hook name) for ``config``: a cached one built by the same
    plugins from the same values of the settings they read, else ``build(recorded_config,
    *arguments)``, kept for later questions."""
    # A plugin registered or removed since (a test's, or one loaded late) builds anew.
    implementations = tuple(id(impl.function) for impl in getattr(pm.hook, kind).get_hookimpls())
    wanted = (arguments, implementations)
    with _lock:
        held = _held(kind, wanted, config)
        if held is not None:
            return held
        building = _building.setdefault(kind, threading.Lock())
    with building:  # one load at a time per kind: two questions must not load one model twice
        with _lock:  # it may have been built while this thread waited
            held = _held(kind, wanted, config)
            if held is not None:
                return held
        recorder = _Recorder(config)
        made = build(recorder, *arguments)
        if made is None:
            return None
        with _lock:
            _cache[_key(kind, recorder.read, wanted)] = made
            _evict(kind, max(1, config.get("loaded_models", 2)))
        return made


def _held(kind: str, wanted: tuple, config):
    """The cached component of ``kind`` built with ``wanted`` (arguments, implementations)
    from the values ``config`` has now, made the most recently used; else None (the caller
    holds ``_lock``)."""
    for key in reversed(_cache):
        name, read, args = key
        if name == kind and args == wanted and all(repr(config.get(setting)) == value for setting, value in read):
            _cache.move_to_end(key)
            return _cache[key]
    return None


def _evict(kind: str, keep: int) -> None:
    """Drop the least recently used components of ``kind`` beyond ``keep`` (the caller holds
    ``_lock``). They are closed on a thread of their own: a model closes only after the
    generation in progress, and nothing should wait for that, least of all under the lock."""
    held = [key for key in _cache if key[0] == kind]
    dropped = [_cache.pop(key) for key in held[: max(0, len(held) - keep)]]
    closers = [close for close in (getattr(made, "close", None) for made in dropped) if callable(close)]
    if closers:
        threading.Thread(target=_close_all, args=(closers,), name="localsearch-unload", daemon=True).start()


def _close_all(closers) -> None:
    for close in closers:
        try:
            close()
        except Exception:  # an unload that fails frees less memory; it must not fail anything
            pass


def embedder(config):
    def build(recorded):
        made = pm.hook.embedder(config=recorded)
        if made is None:
            raise PluginError("no plugin provides an embedder (is localsearch installed with its built-in plugins?)")
        return made

    return component("embedder", config, build)


def store(config):
    """The vector store for ``config``'s embedder (vectors of different embedders are kept apart)."""

    def build(recorded, name):
        made = pm.hook.vector_store(config=recorded, embedder_name=name)
        if made is None:
            raise PluginError("no plugin provides a vector store")
        return made

    return component("vector_store", config, build, embedder(config).name)


def chat_model(config):
    """(model, None), or (None, why there is none): a model that fails to load must not sink
    the question; the extractive answer stands in. (None, None): the bundled model, which
    writes no answer unless ``bundled_model`` is on."""
    try:
        model = component("chat_model", config, lambda recorded: pm.hook.chat_model(config=recorded))
    except LocalsearchError as error:
        return None, str(error)
    except Exception as error:
        return None, f"the language model failed to load: {error}"
    if model is None:
        return None, "no language model plugin is installed"
    if getattr(model, "bundled", False) and not config.bundled_model:
        return None, None  # the small default writes no answer unless asked: see bundled_model
    return model, None


def loaded() -> list[dict]:
    """What is held, least recently used first (``status`` requests report it)."""
    with _lock:
        return [{"kind": kind, "name": getattr(made, "name", type(made).__name__)}
                for (kind, _, _), made in _cache.items()]


def clear() -> None:
    """Close and forget every component (a server that shuts down)."""
    with _lock:
        for kind in {key[0] for key in _cache}:
            _evict(kind, 0)
