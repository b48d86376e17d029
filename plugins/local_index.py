"""Search engine ``local``: the pages already in the index. Works with no network at all."""

from __future__ import annotations

from localsearch import hookimpl
from localsearch.types import SearchResult


class LocalIndexEngine:
    name = "local"
    network = False  # reads the index on this machine

    def search(self, query, limit, context):
        vector = context.embed([query], "query")[0]
        best: dict[str, SearchResult] = {}
        # Several passages per page come back; a page ranks by its best passage.
        for passage in context.query(vector, limit * 4):
            if passage.url not in best:
                best[passage.url] = SearchResult(url=passage.url, title=passage.title,
                                                 snippet=passage.text[:200], engine=self.name,
                                                 score=passage.score)
        return list(best.values())[:limit]


@hookimpl(trylast=True)
def register_search_engines(register):
    register(LocalIndexEngine())
