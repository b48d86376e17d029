"""The plugin manager: loads every plugin, built-in or third-party, from one entry-point group.

A plugin is *built-in* when its entry point comes from the ``localsearch`` distribution itself.
Built-ins are registered first, then third-party plugins, so "first registered" means "built-in
first, then in entry-point order".

Environment (read once, by the first ``load_plugins()`` of a process):

- ``LOCALSEARCH_LOAD_PLUGINS=a,b``: load only these *third-party* plugins (by entry-point
  name); empty loads none. The built-ins load either way.
- ``LOCALSEARCH_DISABLE_PLUGINS=a,b``: never load these plugins, built-in or not (by entry-point
  name; blocked in pluggy, so registering one under that name later is refused too).

Nothing a plugin does wrong takes the tool down; it is reported instead:

- a plugin that fails to import: ``load_errors``;
- a hook implementation localsearch can never call (a name that is no hook, e.g. a misspelling,
  or an argument the hook does not pass): skipped, the rest of the plugin registered, the
  problem kept in ``hook_problems``;
- a raising ``register_search_engines`` / ``register_settings`` / ``register_commands``: every
  plugin's implementation is called on its own (``implementations()``), so one failing plugin is
  a warning and the others still count (``search_engines()``, ``Config.load``,
  ``register_commands()``).

``describe_plugins()`` gathers all of it per plugin, for ``localsearch plugins``.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os
import re
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs

__all__ = ["pm", "load_plugins", "load_errors", "hook_problems", "builtin_plugins", "describe_plugins",
           "implementations", "search_engines", "register_commands", "ENTRY_POINT_GROUP", "DISTRIBUTION"]

ENTRY_POINT_GROUP = "localsearch"
DISTRIBUTION = "localsearch"  # entry points of this distribution are the built-in plugins
logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

load_errors: dict[str, str] = {}  # plugin name -> why it was not loaded
plugin_packages: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
builtin_plugins: set[str] = set()  # entry-point names that come from the localsearch distribution
hook_problems: dict[str, list[str]] = {}  # plugin name -> hook implementations that were skipped
_command_problems: dict[str, list[str]] = {}  # plugin name -> what register_commands() reported
_commands_registered: list[tuple[Any, list[str]]] = []  # (click group, problems), once per group
_loaded = False

_IMPL_DEFAULTS = {"wrapper": False, "hookwrapper": False, "optionalhook": False,
                  "tryfirst": False, "trylast": False, "specname": None}


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, except that a hook implementation localsearch could never call is skipped
    and recorded in ``hook_problems`` rather than accepted silently (a misspelled hook name) or
    refused with the whole plugin (an argument the hook does not pass). The checks use pluggy's
    own records: the hookimpl marker's options, ``pm.hook.<name>.spec`` and ``HookImpl``.
    An implementation marked ``optionalhook=True`` of a hook that does not exist stays allowed,
    as in pluggy (a plugin may implement a hook of a newer localsearch)."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self._registering: tuple[str, list[str]] | None = None

    def register(self, plugin: object, name: str | None = None) -> str | None:
        outer = self._registering
        found: list[str] = []
        self._registering = (name or self.get_canonical_name(plugin), found)
        try:
            registered = super().register(plugin, name)
        finally:
            self._registering = outer
        if registered is not None:
            hook_problems.pop(registered, None)
            _command_problems.pop(registered, None)
            if found:
                hook_problems[registered] = found
                for problem in found:
                    logger.warning("plugin %s: %s", registered, problem)
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any | None:
        if name is None and plugin is not None:
            name = self.get_name(plugin)
        removed = super().unregister(plugin=plugin, name=name)
        if name is not None and self.get_plugin(name) is None:
            hook_problems.pop(name, None)
            _command_problems.pop(name, None)
        return removed

    def parse_hookimpl_opts(self, plugin: object, name: str):
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None or self._registering is None:
            return opts
        plugin_name, problems = self._registering
        hook_name = opts.get("specname") or name
        label = hook_name if hook_name == name else f"{name} (specname {hook_name})"
        caller = getattr(self.hook, hook_name, None)
        if caller is None or not caller.has_spec():
            if opts.get("optionalhook"):
                return opts
            close = difflib.get_close_matches(hook_name, hook_names(), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{label} is not a localsearch hook{hint}; it is ignored")
            return None
        impl = pluggy.HookImpl(plugin, plugin_name, getattr(plugin, name), {**_IMPL_DEFAULTS, **opts})
        accepted = set(caller.spec.argnames) | set(caller.spec.kwargnames)
        unknown = [arg for arg in impl.argnames if arg not in accepted]
        if unknown:
            problems.append(f"{label} takes {', '.join(unknown)}, which the hook does not pass "
                            f"(it passes {', '.join(caller.spec.argnames)}); it is ignored")
            return None
        if (impl.wrapper or impl.hookwrapper) and not inspect.isgeneratorfunction(impl.function):
            problems.append(f"{label} is marked as a wrapper but is not a generator function; it is ignored")
            return None
        return opts


pm = _PluginManager("localsearch")
pm.add_hookspecs(hookspecs)

if os.environ.get("LOCALSEARCH_TRACE_PLUGINS"):
    # Print every hook call and its result: the quickest way to see which plugin answered.
    pm.trace.root.setwriter(lambda message: logging.getLogger("localsearch.trace").warning(message.rstrip()))
    pm.enable_tracing()


def hook_names() -> list[str]:
    """Every hook a plugin can implement (those with a spec in ``hookspecs``)."""
    return sorted(name for name, caller in vars(pm.hook).items()
                  if isinstance(caller, pluggy.HookCaller) and caller.has_spec())


def _names(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    return None if value is None else {name.strip() for name in value.split(",") if name.strip()}


def _is_builtin(entry_point) -> bool:
    dist = getattr(entry_point, "dist", None)
    return dist is not None and re.sub(r"[-_.]+", "-", dist.name or "").lower() == DISTRIBUTION


def load_plugins() -> None:
    """Register the plugins of the entry-point group, once per process: the built-ins, then the
    third-party plugins ``LOCALSEARCH_LOAD_PLUGINS`` selects (all if it is unset), less those
    ``LOCALSEARCH_DISABLE_PLUGINS`` names."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    selected = _names("LOCALSEARCH_LOAD_PLUGINS")
    disabled = _names("LOCALSEARCH_DISABLE_PLUGINS") or set()
    for name in disabled:
        pm.set_blocked(name)
    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: not _is_builtin(ep))  # stable
    loaded_from: dict[str, str] = {}  # entry-point name -> distribution it was taken from
    for entry_point in found:
        name, builtin = entry_point.name, _is_builtin(entry_point)
        package = entry_point.dist.name if entry_point.dist is not None else entry_point.value
        if name in disabled:
            logger.debug("plugin %s is disabled by LOCALSEARCH_DISABLE_PLUGINS", name)
            continue
        if not builtin and selected is not None and name not in selected:
            continue
        if name in loaded_from:
            load_errors.setdefault(name, f"the plugin name {name!r} is already taken by package "
                                         f"{loaded_from[name]}, so {package}'s plugin is not loaded "
                                         f"(its entry point needs another name)")
            logger.warning("plugin %s of %s not loaded: the name is taken by %s", name, package, loaded_from[name])
            continue
        loaded_from[name] = package
        if builtin:
            builtin_plugins.add(name)
        if pm.get_plugin(name) is not None or pm.is_blocked(name):
            continue  # registered (or blocked) by code before the entry points were loaded
        try:
            plugin = entry_point.load()
            pm.register(plugin, name=name)
            if entry_point.dist is not None:
                plugin_packages[name] = (entry_point.dist.name, entry_point.dist.version)
        except Exception as error:  # a broken third-party plugin must not take the tool down
            load_errors[name] = f"{type(error).__name__}: {error}"
            logger.warning("plugin %s failed to load: %s", name, error)
    for name in sorted((selected or set()) - set(loaded_from) - disabled):
        load_errors.setdefault(name, "not installed (LOCALSEARCH_LOAD_PLUGINS names it)")


def implementations(hook_name: str) -> list[tuple[str, Callable[..., Any]]]:
    """``(plugin name, call)`` for every plugin implementing ``hook_name``, in the order the plugins
    were registered; ``call(**kwargs)`` calls that plugin's implementation alone (through pluggy,
    so tracing still sees it). For the registration hooks, so that one raising plugin can be
    reported while the others still count."""
    caller = getattr(pm.hook, hook_name)
    implementing = {impl.plugin_name for impl in caller.get_hookimpls()}
    registered = [(name, plugin) for name, plugin in pm.list_name_plugin() if plugin is not None]
    return [(name, pm.subset_hook_caller(hook_name, [other for _, other in registered if other is not plugin]))
            for name, plugin in registered if name in implementing]


def _failed(plugin_name: str, hook: str, error: BaseException, lost: str) -> str:
    return f"plugin {plugin_name!r}: {hook} failed ({type(error).__name__}: {error}); {lost}"


def _collect_engines() -> tuple[dict[str, object], dict[str, str], list[tuple[str, str]], list[tuple[str, str]]]:
    """(engines by name, owning plugin by name, problems, notes); problems and notes are
    ``(plugin name, message)``."""
    load_plugins()
    engines: dict[str, object] = {}
    owners: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    notes: list[tuple[str, str]] = []
    for plugin_name, call in implementations("register_search_engines"):
        offered: list[object] = []

        def register(engine: object) -> None:
            offered.append(engine)

        try:
            call(register=register)
        except Exception as error:
            problems.append((plugin_name, _failed(plugin_name, "register_search_engines", error,
                                                  "its search engines are not available")))
            continue
        for engine in offered:
            name = getattr(engine, "name", None)
            if not isinstance(name, str) or not name or not callable(getattr(engine, "search", None)):
                problems.append((plugin_name, f"plugin {plugin_name!r} registered {engine!r}, which is not a search "
                                              f"engine (it needs a name and a search method); it is ignored"))
                continue
            first = owners.get(name)
            if first is None:
                engines[name], owners[name] = engine, plugin_name
            elif first in builtin_plugins and plugin_name not in builtin_plugins:
                engines[name], owners[name] = engine, plugin_name
                notes.append((plugin_name, f"search engine {name!r} replaces the built-in one of plugin {first!r}"))
                logger.debug("search engine %s of plugin %s replaces the built-in one of %s", name, plugin_name, first)
            elif plugin_name in builtin_plugins and first not in builtin_plugins:
                notes.append((first, f"search engine {name!r} replaces the built-in one of plugin {plugin_name!r}"))
                logger.debug("search engine %s of plugin %s replaces the built-in one of %s", name, first, plugin_name)
            elif first == plugin_name:
                problems.append((plugin_name, f"plugin {plugin_name!r} registers two search engines named {name!r}; "
                                              f"the first is used"))
            else:
                problems.append((plugin_name, f"search engine {name!r} is registered by plugins {first!r} and "
                                              f"{plugin_name!r}; the one of plugin {first!r} is used"))
    for _, problem in problems:
        logger.warning("%s", problem)
    return engines, owners, problems, notes


def search_engines() -> tuple[dict[str, object], list[str]]:
    """Every plugin's search engines by name, and warnings.

    Each plugin's ``register_search_engines`` is called on its own: one that raises is a warning
    and the others' engines still register. A third-party engine named like a built-in one
    replaces it (by design: that is how an engine is swapped, so it is no warning). Two
    third-party plugins registering one name: the first registered wins and the warning names
    both.
    """
    engines, _, problems, _ = _collect_engines()
    return engines, [message for _, message in problems]


def register_commands(cli) -> list[str]:
    """Let every plugin add its commands to the click group ``cli``; returns the problems.

    Each plugin's ``register_commands`` is called on its own: one that raises is reported (and
    the commands it added before raising are taken out) while the CLI and the other plugins'
    commands keep working. A command named like one that already exists (a core command, or an
    earlier plugin's) is not replaced: the existing one stays and that is reported. Called twice
    with the same group, the second call only returns the first call's problems.
    """
    load_plugins()
    for group, problems in _commands_registered:
        if group is cli:
            return list(problems)
    problems: list[str] = []
    _commands_registered.append((cli, problems))
    commands = getattr(cli, "commands", None)
    for plugin_name, call in implementations("register_commands"):
        before = dict(commands) if isinstance(commands, dict) else None
        found: list[str] = []
        try:
            call(cli=cli)
        except Exception as error:
            if before is not None:
                commands.clear()
                commands.update(before)
            found.append(_failed(plugin_name, "register_commands", error, "its commands are not available"))
        else:
            for name, command in (before or {}).items():
                if commands.get(name) is not command:
                    commands[name] = command
                    found.append(f"plugin {plugin_name!r} adds a command {name!r}, which already exists; "
                                 f"the existing one is kept")
        for problem in found:
            logger.warning("%s", problem)
        _command_problems.setdefault(plugin_name, []).extend(found)
        problems.extend(found)
    return list(problems)


def describe_plugins() -> list[dict]:
    """Every registered plugin, then every plugin that failed to load (what ``localsearch plugins``
    shows). Each is ``{"name", "builtin", "hooks", "settings", "problems", "notes"}``, plus ``"package"`` and
    ``"version"`` when it came from an installed distribution, or ``"error"`` when it failed to load.
    ``problems`` are what was skipped or failed (hook implementations that are no hook, a raising
    registration hook, a setting, engine or command clash); ``notes`` are informational (an engine
    replacing a built-in one)."""
    from .config import _declared_settings

    load_plugins()
    problems: dict[str, list[str]] = {}
    notes: dict[str, list[str]] = {}

    def add(into: dict[str, list[str]], plugin_name: str, message: str) -> None:
        if message not in into.setdefault(plugin_name, []):
            into[plugin_name].append(message)

    for source in (hook_problems, _command_problems):
        for plugin_name, messages in source.items():
            for message in messages:
                add(problems, plugin_name, message)
    declared, setting_problems = _declared_settings()
    settings_of: dict[str, list[str]] = {}
    for setting in declared:
        settings_of.setdefault(setting.owner, []).append(setting.name)
    _, _, engine_problems, engine_notes = _collect_engines()
    for plugin_name, message in setting_problems + engine_problems:
        add(problems, plugin_name, message)
    for plugin_name, message in engine_notes:
        add(notes, plugin_name, message)

    described = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [] if caller.has_spec())
        info = {"name": name, "builtin": name in builtin_plugins, "hooks": hooks,
                "settings": settings_of.get(name, []), "problems": problems.get(name, []),
                "notes": notes.get(name, [])}
        if name in plugin_packages:
            info["package"], info["version"] = plugin_packages[name]
        described.append(info)
    for name, error in sorted(load_errors.items()):
        described.append({"name": name, "builtin": name in builtin_plugins, "hooks": [], "settings": [],
                          "problems": [], "notes": [], "error": error})
    return described
