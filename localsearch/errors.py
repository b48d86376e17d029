"""The one error family: anything a user can cause or fix is a LocalsearchError.

Front ends print ``str(error)`` as a one-line reason; tracebacks are for ``--debug``.
"""

__all__ = ["LocalsearchError", "ConfigError", "PluginError", "SearchEngineError", "RateLimited", "SearchBlocked",
           "SearchTimeout", "ImageError", "Cancelled"]


class LocalsearchError(Exception):
    """A problem with a clear cause the user can act on."""


class ConfigError(LocalsearchError):
    """A setting is unknown, malformed, or points at something that is not there."""


class PluginError(LocalsearchError):
    """A plugin is missing, failed to load, or returned something unusable."""


class SearchEngineError(LocalsearchError):
    """A search engine was unreachable or answered with something that is not results. Its
    ``status`` is the outcome reported for the engine; the subclasses below name the common ones."""

    status = "error"


class RateLimited(SearchEngineError):
    """The engine refuses more queries for now (HTTP 429, or its own rate-limit answer)."""

    status = "rate-limited"


class SearchBlocked(SearchEngineError):
    """The engine answered with a CAPTCHA or a refusal page instead of results."""

    status = "blocked"


class SearchTimeout(SearchEngineError):
    """The engine gave up waiting for its own service (reported like a search that ran out of time)."""

    status = "timeout"


class ImageError(LocalsearchError):
    """An image that cannot be read: corrupt, of a kind not read (SVG), or too large."""


class Cancelled(LocalsearchError):
    """The question was cancelled by the user."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)
