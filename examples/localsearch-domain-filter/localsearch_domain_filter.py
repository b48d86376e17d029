"""A localsearch plugin: keep chosen sites out of your answers (content farms, SEO spam), or
answer only from the sites you trust.

- ``filter_results``: before any page is read, drops the search results on a domain of
  ``blocked_domains`` (its subdomains too), and, when ``allowed_domains`` is set, every result
  not on one of those.
- ``register_settings``: ``blocked_domains``, ``allowed_domains``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from localsearch import hookimpl


def _domains(values) -> list[str]:
    return [str(v).strip().lower().strip(".") for v in values or [] if str(v).strip(" .")]


def on(host: str, domains: list[str]) -> bool:
    """Whether ``host`` is one of ``domains`` or under one of them (news.example.com is under example.com)."""
    host = host.lower().rstrip(".")
    return any(host == domain or host.endswith("." + domain) for domain in domains)


@hookimpl
def filter_results(results, config):
    blocked, allowed = _domains(config.blocked_domains), _domains(config.allowed_domains)
    if not blocked and not allowed:
        return None  # nothing to do: the results stay as they are
    kept = []
    for result in results:
        host = urlsplit(result.url).hostname or ""
        if on(host, blocked) or (allowed and not on(host, allowed)):
            continue
        kept.append(result)
    return kept


@hookimpl
def register_settings(register):
    register("blocked_domains", [], "search results on these domains (and their subdomains) are never read")
    register("allowed_domains", [], "when set, only search results on these domains (and their subdomains) are read")
