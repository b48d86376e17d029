"""Search engine: the Brave Search API (``brave_api_key``; a free plan exists at
https://api-dashboard.search.brave.com). The key is sent in a header only: it never appears in
a URL, an error message or the log."""

from __future__ import annotations

from localsearch import hookimpl
from localsearch.errors import RateLimited, SearchBlocked, SearchEngineError, SearchTimeout
from localsearch.types import SearchResult

API = "https://api.search.brave.com/res/v1/web/search"


class BraveEngine:
    name = "brave"

    @staticmethod
    def endpoint(config) -> str:
        return config.brave_url or API

    def search(self, query, limit, context):
        import httpx

        config = context.config
        key = (config.brave_api_key or "").strip()
        if not key:
            raise SearchEngineError("brave_api_key is not set (get a key at https://api-dashboard.search.brave.com)")
        url = config.brave_url or API
        try:
            response = httpx.get(url, params={"q": query, "count": max(1, min(int(limit), 20))},
                                 headers={"X-Subscription-Token": key, "Accept": "application/json"},
                                 timeout=config.search_timeout, follow_redirects=False)
        except httpx.TimeoutException:
            raise SearchTimeout(f"Brave did not answer within {config.search_timeout:g} s") from None
        except httpx.HTTPError as error:
            raise SearchEngineError(f"cannot reach Brave Search ({type(error).__name__})") from None
        if response.status_code == 429:
            raise RateLimited("Brave Search answered HTTP 429: the plan's rate or monthly quota is used up")
        if response.status_code in (401, 403):
            raise SearchBlocked(f"Brave Search refused the key (HTTP {response.status_code}): check brave_api_key")
        if response.status_code != 200:
            raise SearchEngineError(f"Brave Search answered HTTP {response.status_code}")
        try:
            rows = response.json().get("web", {}).get("results", [])
            hits = [SearchResult(url=row["url"], title=row.get("title") or "", snippet=row.get("description") or "",
                                 engine=self.name)
                    for row in rows if isinstance(row, dict) and isinstance(row.get("url"), str)]
        except (ValueError, AttributeError, TypeError) as error:
            raise SearchEngineError(f"Brave Search did not answer with results ({type(error).__name__})") from None
        return [hit for hit in hits if hit.url.startswith(("http://", "https://"))][:limit]


@hookimpl(trylast=True)
def register_settings(register):
    register("brave_api_key", "", "key of the Brave Search API (engine `brave`); kept out of logs and errors")
    register("brave_url", "", "the Brave Search API's address (empty: " + API + ")")


@hookimpl(trylast=True)
def register_search_engines(register):
    register(BraveEngine())
