"""Search engine: a SearXNG instance's JSON API (``searxng_url``)."""

from __future__ import annotations

from localsearch import hookimpl
from localsearch.errors import RateLimited, SearchBlocked, SearchEngineError, SearchTimeout
from localsearch.types import SearchResult


def looks_like_captcha(text: str) -> bool:
    """A page that asks a human to prove it is one (what engines answer bots with)."""
    lowered = text.lower()
    return "captcha" in lowered or "are you a robot" in lowered or "unusual traffic" in lowered


class SearxngEngine:
    name = "searxng"

    @staticmethod
    def endpoint(config) -> str:
        return config.searxng_url.rstrip("/") + "/search" if config.searxng_url else ""

    def search(self, query, limit, context):
        import httpx

        base = context.config.searxng_url.rstrip("/")
        if not base:
            raise SearchEngineError("searxng_url is not set (e.g. --searxng-url http://localhost:8888)")
        try:
            response = httpx.get(f"{base}/search", params={"q": query, "format": "json"},
                                 timeout=context.config.search_timeout, follow_redirects=True)
        except httpx.TimeoutException:
            raise SearchTimeout(f"{base} did not answer within {context.config.search_timeout:g} s") from None
        except httpx.HTTPError as error:
            raise SearchEngineError(f"cannot reach {base}: {error}") from None
        if response.status_code == 429:
            raise RateLimited(f"{base} answered HTTP 429: too many requests for now")
        if looks_like_captcha(response.text[:20000]):
            raise SearchBlocked(f"{base} answered with a CAPTCHA page instead of results")
        if response.status_code != 200:
            hint = " (is the json format enabled in its settings.yml?)" if response.status_code == 403 else ""
            raise SearchEngineError(f"{base} answered HTTP {response.status_code}{hint}")
        try:
            results = response.json()["results"]
            hits = [SearchResult(url=r["url"], title=r.get("title") or "", snippet=r.get("content") or "",
                                 engine=self.name, score=float(r.get("score") or 0.0))
                    for r in results if isinstance(r, dict) and isinstance(r.get("url"), str)]
            if not isinstance(results, list):
                raise TypeError("results is not a list")
        except (ValueError, KeyError, TypeError) as error:
            raise SearchEngineError(f"{base} did not answer with SearXNG JSON results ({error})") from None
        return [h for h in hits if h.url.startswith(("http://", "https://"))][:limit]


@hookimpl(trylast=True)
def register_settings(register):
    register("searxng_url", "", "base URL of a SearXNG instance with the JSON format enabled")


@hookimpl(trylast=True)
def register_search_engines(register):
    register(SearxngEngine())
