"""Vector store and page cache: chromadb, on disk under ``data_dir`` or a chroma server
(``chroma_url``). We pass our own vectors; chroma's default embedder is never used.

A page is in the store with all its passages or not at all. Its record is first written as
``writing`` (listing the spans of its old and new passages), then its passages, then the record
as stored; a reader treats a page being written as not there. A writer killed half-way leaves a
``writing`` record, and the next store opened on the folder deletes that page and its passages
(the page is indexed again when next read). On disk, writers of one folder, in any process, take
turns (a lock file in the data directory), so whoever holds the lock knows every ``writing``
record it sees is left over; on a chroma server, one is left over after ``STALE_SECONDS``.

Chroma itself can be left unreadable by a kill in the middle of saving its vector index (about
one kill in fifty, measured; upstream chroma-core/chroma #7678, #7238): such a folder is moved
aside as ``chroma.damaged-<time>`` and a new, empty store is opened in its place. The store is a
cache of pages that can be fetched again; the damaged copy is kept for inspection.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from localsearch import hookimpl
from localsearch.errors import ConfigError
from localsearch.private import private_directory
from localsearch.types import Document, Passage

logger = logging.getLogger(__name__)
_clients: dict[str, object] = {}
_lock = threading.Lock()
MAX_BATCH = 5000  # chroma refuses adds above ~5,400 records
LOCK_FILE = "index.lock"
STALE_SECONDS = 3600.0  # a page write on a chroma server that is this old was abandoned
# What chroma says of a folder a kill left unreadable (seen in the kill tests): its vector index's
# files cut short, or a log it cannot apply to them.
DAMAGE = re.compile(r"hnsw|segment|compact|pickle|Nothing found on disk", re.I)


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


@contextmanager
def _write_lock(path: Path | None, shared: bool = False):
    """Writers of one folder take turns, across processes, and readers (``shared``) read between
    writes: chroma's files read while another process rewrites them can fail ("Error creating
    hnsw segment reader: Nothing found on disk"). The lock goes with a killed process."""
    if path is None:
        yield
        return
    import fcntl

    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


class ChromaStore:
    """Passages in one collection; whole documents (the page cache) in another, keyed by URL.
    ``lock_path``: the lock file of an on-disk store (None: a chroma server)."""

    def __init__(self, client, embedder_name: str, lock_path: Path | None = None):
        slug = _slug(embedder_name)
        space = {"hnsw": {"space": "cosine"}}
        self.lock_path = lock_path
        self._lock = threading.Lock()  # flock does not order this process's own threads
        self.passages = client.get_or_create_collection(f"passages-{slug}", embedding_function=None,
                                                        configuration=space)
        self.pages = client.get_or_create_collection(f"pages-{slug}", embedding_function=None,
                                                     configuration=space)
        self.recovered = self.recover()

    set_aside: tuple[str, str] | None = None  # (where, why) when a damaged store was moved aside for this one

    def probe(self) -> None:
        """Read a passage, its vector and a nearest neighbour: chroma's damage shows here, when
        the store opens, not in the middle of a question."""
        with self._reading():
            found = self.passages.get(limit=1, include=["embeddings"])
            if found["ids"]:
                self.passages.query(query_embeddings=[list(found["embeddings"][0])], n_results=1)
            self.pages.get(limit=1)

    @contextmanager
    def _writing(self):
        with self._lock, _write_lock(self.lock_path):
            yield

    def _reading(self):
        # Never taken inside _writing (this process's own write lock would wait for it).
        return _write_lock(self.lock_path, shared=True)

    def recover(self) -> int:
        """Delete the pages a killed writer left half-written, with their passages; returns how many."""
        with self._writing():
            found = self.pages.get(where={"writing": 1}, include=["metadatas"])
            left = [(page_id, meta) for page_id, meta in zip(found["ids"], found["metadatas"])
                    if self.lock_path is not None or time.time() - float(meta.get("since", 0)) > STALE_SECONDS]
            for page_id, meta in left:
                self._forget(page_id, _spans(meta))
        return len(left)

    def _forget(self, page_id: str, spans: list[str]) -> None:
        """Delete a page's passages, then its record (in that order: a kill in between leaves
        the record, so the next recovery deletes them again)."""
        for i in range(0, len(spans), MAX_BATCH):
            self.passages.delete(ids=[f"{page_id}:{span}" for span in spans[i:i + MAX_BATCH]])
        self.pages.delete(ids=[page_id])

    def get_document(self, url):
        with self._reading(), _unreadable_as_absent(url):
            found = self.pages.get(ids=[_page_id(url)], include=["documents", "metadatas"])
            return self._document(found)
        return None  # chroma could not read it just now: as if not cached, fetched again

    def _document(self, found):
        if not found["ids"] or found["metadatas"][0].get("writing"):
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
            if (meta or {}).get("writing"):
                continue  # being written, or left half-written: not there
            if isinstance(spans, str):
                ids.extend(f"{page_id}:{span}" for span in spans.split(",") if span)
            else:
                unlisted.append(page_id)
        return ids, unlisted

    def add_document(self, document, passages, vectors):
        with self._writing():
            self._add_document(document, passages, vectors)

    def _add_document(self, document, passages, vectors):
        page_id = _page_id(document.url)
        # Deleting by id is a key lookup; delete(where=page) scans a metadata index that grows
        # with the store (insert rate 0.31x raw at a million passages).
        found = self.pages.get(ids=[page_id], include=["metadatas"])
        record = found["metadatas"][0] if found["ids"] else None
        old_spans = _spans(record) if record else []
        if record is not None and not isinstance(record.get("spans"), str):
            self.passages.delete(where={"page": page_id})  # stored by an older version, unlisted
        new_spans = [f"{p.start}-{p.end}" for p in passages]
        if not vectors:  # nothing to index: such a page is simply not cached
            if record is not None:
                self._forget(page_id, old_spans)
            return
        everything = list(dict.fromkeys(old_spans + new_spans))
        # Upsert merges metadata: every key a later write must drop is written here.
        self.pages.upsert(ids=[page_id], documents=[""], embeddings=[_mean(vectors)],
                          metadatas=[{"url": document.url, "writing": 1, "since": time.time(),
                                      "spans": ",".join(everything), "passages": len(everything)}])
        try:
            if old_spans:
                self.passages.delete(ids=[f"{page_id}:{span}" for span in old_spans])
            ids = [f"{page_id}:{span}" for span in new_spans]
            metadatas = [{"url": document.url, "page": page_id, "title": document.title or "",
                          "start": p.start, "end": p.end, "section": p.section, "kind": p.kind,
                          **({"image": p.image} if p.image else {})} for p in passages]
            for i in range(0, len(ids), MAX_BATCH):
                self.passages.upsert(ids=ids[i:i + MAX_BATCH], embeddings=vectors[i:i + MAX_BATCH],
                                     documents=[p.text for p in passages[i:i + MAX_BATCH]],
                                     metadatas=metadatas[i:i + MAX_BATCH])
            self.pages.upsert(ids=[page_id], documents=[document.text], embeddings=[_mean(vectors)],
                              metadatas=[{"url": document.url, "title": document.title or "",
                                          "date": document.date or "", "fetched_at": document.fetched_at,
                                          "content_hash": document.content_hash, "passages": len(passages),
                                          "spans": ",".join(new_spans), "writing": 0, "since": time.time()}])
        except BaseException:
            try:
                self._forget(page_id, everything)  # not half of it: none of it
            except Exception as error:  # the record still says writing: the next store opened forgets it
                logger.warning("could not forget the half-written %s: %s", document.url, error)
            raise

    def touch(self, url, fetched_at):
        page_id = _page_id(url)
        with self._writing():
            found = self.pages.get(ids=[page_id], include=["metadatas"])
            if found["ids"] and not found["metadatas"][0].get("writing"):
                self.pages.update(ids=[page_id], metadatas=[{**found["metadatas"][0], "fetched_at": fetched_at}])

    def query(self, vector, k, urls=None):
        # No count() first: it costs more than the query itself at 100k passages (13 ms of
        # 18), and chroma 1.x answers an empty collection or k above the count by itself.
        if k <= 0 or urls == []:
            return []
        with self._reading(), _unreadable_as_absent("the index"):
            return self._query(vector, k, urls)
        return []  # chroma could not read it just now: answered from the pages read for the question

    def _query(self, vector, k, urls):
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
        passages = [(text, meta, 1.0 - distance) for text, meta, distance in
                    zip(found["documents"][0], found["metadatas"][0], found["distances"][0])]
        # A page another process is writing (or was killed writing) is not there yet.
        pages = sorted({meta.get("page") for _, meta, _ in passages if meta.get("page")})
        records = self.pages.get(ids=pages, include=["metadatas"]) if pages else {"ids": [], "metadatas": []}
        writing = {page for page, meta in zip(records["ids"], records["metadatas"]) if (meta or {}).get("writing")}
        return [_passage(text, meta, score) for text, meta, score in passages if meta.get("page") not in writing]

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
        with self._reading():
            return self.passages.count()


def _spans(record: dict) -> list[str]:
    spans = record.get("spans")
    return [span for span in spans.split(",") if span] if isinstance(spans, str) else []


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
    lock_path = None if config.chroma_url else Path(config.data_dir) / LOCK_FILE
    for attempt in range(3):
        try:
            store = ChromaStore(_client(config), embedder_name, lock_path)
            store.probe()
            return store
        except ConfigError:
            raise
        except Exception as error:  # chroma's own files, left unreadable by a killed writer
            if config.chroma_url or not DAMAGE.search(str(error)):
                raise  # not the damage a kill leaves (a version mismatch, a bad setting): the user's to see
            failure: Exception = error
            # Read again by a new client, between other processes' writes: only what fails every
            # time is damage, not a file another process was rewriting.
            _forget_client(config)
            time.sleep(0.5 * attempt)
    # Three failed reads: the folder is damaged.
    moved = _set_aside(config, lock_path)
    logger.warning("the index in %s could not be read (%s: %s); it was moved to %s and a new one started",
                   Path(config.data_dir) / "chroma", type(failure).__name__, failure, moved)
    store = ChromaStore(_client(config), embedder_name, lock_path)
    store.set_aside = (str(moved), f"{type(failure).__name__}: {failure}")
    return store


@contextmanager
def _unreadable_as_absent(what: str):
    """A read chroma fails because another process holds part of the index in its memory (its
    vector index is written to disk only now and then; "Nothing found on disk"): the read finds
    nothing, and the caller's fallback stands. The store opened was probed, so this is no damage."""
    from chromadb.errors import ChromaError

    try:
        yield
    except ChromaError as error:
        logger.warning("could not read %s from the store just now (%s); going on without it", what, error)


def _forget_client(config) -> None:
    """Drop this process's chroma client of the on-disk folder, so the next one reads it anew."""
    from chromadb.api.client import SharedSystemClient

    with _lock:
        _clients.pop(str(Path(config.data_dir) / "chroma"), None)
        SharedSystemClient.clear_system_cache()  # chroma keeps one system per path: it must let go of it


def _set_aside(config, lock_path: Path) -> Path:
    """Move the on-disk chroma folder aside (kept for inspection) and forget its client."""
    folder = Path(config.data_dir) / "chroma"
    moved = folder.with_name(f"chroma.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    _forget_client(config)
    with _lock, _write_lock(lock_path):
        if folder.exists():
            folder.rename(moved)
    return moved
