"""Search engine: DuckDuckGo (and friends) through the ``ddgs`` package."""

from __future__ import annotations

from localsearch import hookimpl
from localsearch.errors import RateLimited, SearchEngineError, SearchTimeout
from localsearch.types import SearchResult


class DuckDuckGoEngine:
    name = "duckduckgo"

    @staticmethod
    def endpoint(config) -> str:
        return f"ddgs backend {config.ddgs_backend}"  # ddgs picks the addresses itself

    def search(self, query, limit, context):
        try:
            from ddgs import DDGS
        except ImportError:
            raise SearchEngineError("the ddgs package is not installed (pip install 'localsearch[search]')") from None
        try:
            rows = DDGS(timeout=int(context.config.search_timeout)).text(
                query, max_results=limit, backend=context.config.ddgs_backend)
        except Exception as error:  # ddgs raises its own types for rate limits and network errors
            kind = type(error).__name__.lower()
            if "ratelimit" in kind or "202" in str(error):  # DuckDuckGo answers a rate limit with HTTP 202
                raise RateLimited(f"DuckDuckGo is rate-limiting: {error}") from None
            if "timeout" in kind:
                raise SearchTimeout(f"DuckDuckGo did not answer in time: {error}") from None
            raise SearchEngineError(f"DuckDuckGo search failed: {error}") from None
        return [SearchResult(url=row["href"], title=row.get("title", ""), snippet=row.get("body", ""),
                             engine=self.name)
                for row in rows or [] if str(row.get("href", "")).startswith(("http://", "https://"))]


@hookimpl(trylast=True)
def register_settings(register):
    register("ddgs_backend", "duckduckgo", "ddgs backend(s): duckduckgo, bing, brave, auto ...")


@hookimpl(trylast=True)
def register_search_engines(register):
    register(DuckDuckGoEngine())
