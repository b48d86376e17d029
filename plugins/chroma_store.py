"""Vector store and page cache: chromadb, on disk under ``data_dir`` or a chroma server
(``chroma_url``). We pass our own vectors; chroma's default embedder is never used."""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

from localsearch import hookimpl
from localsearch.errors import ConfigError
from localsearch.private import private_directory
from localsearch.types import Document, Passage

_clients: dict[str, object] = {}
_lock = threading.Lock()
MAX_BATCH = 5000  # chroma refuses adds above ~5,400 records


@hookimpl(trylast=True)
def register_settings(register):
    register("chroma_url", "", "a chroma server (chroma run) to use instead of the local folder, e.g. http://localhost:8000")


def _client(config):
    from chromadb.config import Settings

    key = config.chroma_url or str(Path(config.data_dir) / "chroma")
    with _lock:
        if key not in _clients:
            import chromadb

            settings = Settings(anonymized_telemetry=False)
            if config.chroma_url:
                parts = urlsplit(config.chroma_url)
                if not parts.hostname:
                    raise ConfigError(f"chroma_url {config.chroma_url!r} is not a URL like http://localhost:8000")
                _clients[key] = chromadb.HttpClient(host=parts.hostname, port=parts.port or 8000,
                                                    ssl=parts.scheme == "https", settings=settings)
            else:
                try:
                    private_directory(config.data_dir)  # every page read lives here: the user's alone
                    private_directory(key)
                    _clients[key] = chromadb.PersistentClient(path=key, settings=settings)
                except (OSError, PermissionError) as error:
                    raise ConfigError(f"cannot use the data directory {key}: {error}") from None
        return _clients[key]


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:40] or "model"
    return slug + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]


def _page_id(url: str) -> str:
    return hashlib.sha1(url.encode("utf-8")).hexdigest()


class ChromaStore:
    """Passages in one collection; whole documents (the page cache) in another, keyed by URL."""

    def __init__(self, client, embedder_name: str):
        slug = _slug(embedder_name)
        space = {"hnsw": {"space": "cosine"}}
        self.passages = client.get_or_create_collection(f"passages-{slug}", embedding_function=None,
                                                        configuration=space)
        self.pages = client.get_or_create_collection(f"pages-{slug}", embedding_function=None,
                                                     configuration=space)

    def get_document(self, url):
        found = self.pages.get(ids=[_page_id(url)], include=["documents", "metadatas"])
        if not found["ids"]:
            return None
        meta = found["metadatas"][0]
        return Document(url=meta["url"], text=found["documents"][0], title=meta.get("title", ""),
                        date=meta.get("date") or None, fetched_at=float(meta.get("fetched_at", 0.0)),
                        content_hash=meta.get("content_hash", ""))

    def _passage_ids(self, page_ids: list[str]) -> tuple[list[str], list[str]]:
        """The passage ids of the stored pages among ``page_ids``, and the pages whose record
        does not list them (stored by an older version). Pages never stored have neither."""
        found = self.pages.get(ids=page_ids, include=["metadatas"])
        ids, unlisted = [], []
        for page_id, meta in zip(found["ids"], found["metadatas"]):
            spans = (meta or {}).get("spans")
            if isinstance(spans, str):
                ids.extend(f"{page_id}:{span}" for span in spans.split(",") if span)
            else:
                unlisted.append(page_id)
        return ids, unlisted

    def add_document(self, document, passages, vectors):
        page_id = _page_id(document.url)
        # Deleting by id is a key lookup; delete(where=page) scans a metadata index that grows
        # with the store (insert rate 0.31x raw at a million passages).
        old_ids, unlisted = self._passage_ids([page_id])
        if old_ids:
            self.passages.delete(ids=old_ids)
        if unlisted:
            self.passages.delete(where={"page": page_id})
        ids = [f"{page_id}:{p.start}-{p.end}" for p in passages]
        metadatas = [{"url": document.url, "page": page_id, "title": document.title or "",
                      "start": p.start, "end": p.end, "section": p.section, "kind": p.kind,
                      **({"image": p.image} if p.image else {})} for p in passages]
        for i in range(0, len(ids), MAX_BATCH):
            self.passages.upsert(ids=ids[i:i + MAX_BATCH], embeddings=vectors[i:i + MAX_BATCH],
                                 documents=[p.text for p in passages[i:i + MAX_BATCH]],
                                 metadatas=metadatas[i:i + MAX_BATCH])
        if not vectors:
            return  # nothing to index: such a page is simply not cached
        self.pages.upsert(ids=[page_id], documents=[document.text], embeddings=[_mean(vectors)],
                          metadatas=[{"url": document.url, "title": document.title or "",
                                      "date": document.date or "", "fetched_at": document.fetched_at,
                                      "content_hash": document.content_hash, "passages": len(passages),
                                      "spans": ",".join(f"{p.start}-{p.end}" for p in passages)}])

    def touch(self, url, fetched_at):
        page_id = _page_id(url)
        found = self.pages.get(ids=[page_id], include=["metadatas"])
        if found["ids"]:
            self.pages.update(ids=[page_id], metadatas=[{**found["metadatas"][0], "fetched_at": fetched_at}])

    def query(self, vector, k, urls=None):
        # No count() first: it costs more than the query itself at 100k passages (13 ms of
        # 18), and chroma 1.x answers an empty collection or k above the count by itself.
        if k <= 0 or urls == []:
            return []
        if not urls:
            return self._nearest(vector, k, None)
        # The passages of a few pages: fetched by id and scored here. A query with
        # where={"page": {"$in": ...}} filters the whole index first: 1.1 s at a million passages.
        ids, unlisted = self._passage_ids([_page_id(u) for u in urls])
        passages = self._scored(vector, ids) if ids else []
        if unlisted:
            where = {"page": unlisted[0]} if len(unlisted) == 1 else {"page": {"$in": unlisted}}
            passages += self._nearest(vector, k, where)
        return sorted(passages, key=lambda p: -p.score)[:k]

    def _nearest(self, vector, k, where):
        found = self.passages.query(query_embeddings=[vector], n_results=k, where=where,
                                    include=["documents", "metadatas", "distances"])
        return [_passage(text, meta, 1.0 - distance) for text, meta, distance in
                zip(found["documents"][0], found["metadatas"][0], found["distances"][0])]

    def _scored(self, vector, ids):
        import numpy as np

        found = self.passages.get(ids=ids, include=["documents", "metadatas", "embeddings"])
        if not found["ids"]:
            return []
        matrix, query = np.asarray(found["embeddings"], dtype=np.float32), np.asarray(vector, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query) or 1.0)
        similarity = matrix @ query / np.where(norms == 0, 1.0, norms)  # cosine, as the index measures it
        return [_passage(text, meta, float(score)) for text, meta, score in
                zip(found["documents"], found["metadatas"], similarity)]

    def count(self):
        return self.passages.count()


def _passage(text, meta, similarity) -> Passage:
    return Passage(url=meta["url"], text=text, start=int(meta["start"]), end=int(meta["end"]),
                   title=meta.get("title", ""), score=round(similarity, 4),
                   section=meta.get("section", ""), kind=meta.get("kind", "text"), image=meta.get("image", ""))


def _mean(vectors):
    size = len(vectors[0])
    mean = [sum(v[i] for v in vectors) / len(vectors) for i in range(size)]
    norm = sum(x * x for x in mean) ** 0.5 or 1.0
    return [x / norm for x in mean]


@hookimpl(trylast=True)
def vector_store(config, embedder_name):
    return ChromaStore(_client(config), embedder_name)
