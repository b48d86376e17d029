"""The one error family: anything a user can cause or fix is a LocalsearchError.

Front ends print ``str(error)`` as a one-line reason; tracebacks are for ``--debug``.
"""

__all__ = ["LocalsearchError", "ConfigError", "PluginError", "SearchEngineError", "Cancelled"]


class LocalsearchError(Exception):
    """A problem with a clear cause the user can act on."""


class ConfigError(LocalsearchError):
    """A setting is unknown, malformed, or points at something that is not there."""


class PluginError(LocalsearchError):
    """A plugin is missing, failed to load, or returned something unusable."""


class SearchEngineError(LocalsearchError):
    """A search engine was unreachable or answered with something that is not results."""


class Cancelled(LocalsearchError):
    """The question was cancelled by the user."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)
