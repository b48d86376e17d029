"""The plugin manager: loads every plugin, built-in or third-party, from one entry-point group.

``LOCALSEARCH_LOAD_PLUGINS`` limits which entry points load: a comma-separated list of their
names, empty for none. A plugin that fails to import is reported, not fatal.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points

import pluggy

from . import hookspecs

__all__ = ["pm", "load_plugins", "load_errors", "describe_plugins", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "localsearch"
logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

pm = pluggy.PluginManager("localsearch")
pm.add_hookspecs(hookspecs)

load_errors: dict[str, str] = {}
plugin_packages: dict[str, tuple[str, str]] = {}
_loaded = False

if os.environ.get("LOCALSEARCH_TRACE_PLUGINS"):
    # Print every hook call and its result: the quickest way to see which plugin answered.
    pm.trace.root.setwriter(lambda message: logging.getLogger("localsearch.trace").warning(message.rstrip()))
    pm.enable_tracing()


def load_plugins() -> None:
    """Register every plugin of the entry-point group once per process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    wanted = os.environ.get("LOCALSEARCH_LOAD_PLUGINS")
    allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and entry_point.name not in allowed:
            continue
        if pm.get_plugin(entry_point.name) is not None or pm.is_blocked(entry_point.name):
            continue
        try:
            plugin = entry_point.load()
            pm.register(plugin, name=entry_point.name)
            if entry_point.dist is not None:
                plugin_packages[entry_point.name] = (entry_point.dist.name, entry_point.dist.version)
        except Exception as error:  # a broken third-party plugin must not take the tool down
            load_errors[entry_point.name] = f"{type(error).__name__}: {error}"
            logger.warning("plugin %s failed to load: %s", entry_point.name, error)


def describe_plugins() -> list[dict]:
    """Every registered plugin with the hooks it implements (what ``localsearch plugins`` shows)."""
    load_plugins()
    described = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        info = {"name": name, "hooks": hooks}
        if name in plugin_packages:
            info["package"], info["version"] = plugin_packages[name]
        described.append(info)
    for name, error in sorted(load_errors.items()):
        described.append({"name": name, "hooks": [], "error": error})
    return described
