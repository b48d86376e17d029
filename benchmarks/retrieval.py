"""5. Retrieval at scale: top-10 query latency, insert rate and memory with 10k, 100k (and 1M)
synthetic normalised 384-d passages in chroma, through localsearch's store vs raw chroma on the
same collection.

The collection grows from one scale to the next; its batches go in alternately through
``store.add_document`` (documents of ``doc_passages`` passages, the way the pipeline indexes
pages) and raw ``collection.add`` (one batch of up to 5000). Memory is measured in two fresh
processes (``python -m benchmarks.store_probe``) that open the store and query it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

from . import ROOT
from .harness import Row, Target, alternate, timed

BENCH = "5 Retrieval"
DIM = 384
EMBEDDER_NAME = "synthetic-384"
FULL_SCALE = 1_000_000


def unit_vectors(rng, n: int):
    import numpy as np

    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def page_id(url: str) -> str:
    return hashlib.sha1(url.encode("utf-8")).hexdigest()


def synthetic_texts(first: int, n: int) -> list[str]:
    return [f"Synthetic passage number {j} about nothing in particular." for j in range(first, first + n)]


def insert_ours(store, first: int, vectors, doc_passages: int) -> None:
    """``len(vectors)`` passages through ``add_document``, ``doc_passages`` to a document."""
    from localsearch.types import Document, Passage

    for offset in range(0, len(vectors), doc_passages):
        texts = synthetic_texts(first + offset, min(doc_passages, len(vectors) - offset))
        url = f"https://synthetic.invalid/ours/{first + offset}"
        passages, position = [], 0
        for text in texts:
            passages.append(Passage(url=url, text=text, start=position, end=position + len(text)))
            position += len(text) + 1
        document = Document(url=url, text="\n".join(texts), title=f"Synthetic {first + offset}")
        store.add_document(document, passages, vectors[offset: offset + len(texts)].tolist())


def insert_raw(collection, first: int, vectors, doc_passages: int) -> None:
    """The same passages with one ``collection.add`` call (metadata shaped like the store's)."""
    texts = synthetic_texts(first, len(vectors))
    metadatas, ids = [], []
    for i, text in enumerate(texts):
        url = f"https://synthetic.invalid/raw/{first + i - i % doc_passages}"
        start = sum(len(t) + 1 for t in texts[i - i % doc_passages: i])
        metadatas.append({"url": url, "page": page_id(url), "title": "", "start": start, "end": start + len(text)})
        ids.append(f"raw:{first + i}")
    collection.add(ids=ids, embeddings=vectors, documents=texts, metadatas=metadatas)


def grow(store, collection, target: int, settings, rng) -> dict[str, list[tuple[int, float]]]:
    """Fill the collection up to ``target`` passages, batches alternating between the two
    insert paths; returns (passages, seconds) per batch for each."""
    done: dict[str, list[tuple[int, float]]] = {"ours": [], "raw": []}
    count, batch = collection.count(), 0
    while count < target:
        n = min(settings.insert_batch, target - count)
        vectors = unit_vectors(rng, n)
        if batch % 2 == 0:
            done["ours"].append((n, timed(lambda: insert_ours(store, count, vectors, settings.doc_passages))))
        else:
            done["raw"].append((n, timed(lambda: insert_raw(collection, count, vectors, settings.doc_passages))))
        count, batch = count + n, batch + 1
    return done


def rate(batches: list[tuple[int, float]]) -> float | None:
    seconds = sum(s for _, s in batches)
    return sum(n for n, _ in batches) / seconds if seconds else None


def query_latencies(store, collection, queries, urls=None) -> dict[str, list[float]]:
    """Milliseconds of each top-10 query, localsearch and raw chroma alternating."""
    where = None
    if urls:
        pages = [page_id(u) for u in urls]
        where = {"page": {"$in": pages}} if len(pages) > 1 else {"page": pages[0]}
    vectors = [(v.tolist(), v) for v in queries]

    def ours(pair):
        return 1000 * timed(lambda: store.query(pair[0], 10, urls=urls))

    def raw(pair):
        return 1000 * timed(lambda: collection.query(query_embeddings=[pair[1]], n_results=10, where=where))

    alternate(vectors[:3], {"ours": ours, "raw": raw})  # first queries after inserts load the index
    return alternate(vectors, {"ours": ours, "raw": raw})


def probe_memory(data_dir: str, collection_name: str, mode: str, queries: int) -> dict:
    """RSS of a fresh process that opens the store (localsearch's or raw chroma) and queries it."""
    command = [sys.executable, "-m", "benchmarks.store_probe", "--mode", mode, "--data-dir", data_dir,
               "--collection", collection_name, "--embedder-name", EMBEDDER_NAME, "--queries", str(queries)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"store probe ({mode}) failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(config, settings, data_dir: str) -> list[Row]:
    import numpy as np

    from localsearch.plugins import pm

    store = pm.hook.vector_store(config=config.replace(data_dir=data_dir), embedder_name=EMBEDDER_NAME)
    collection = store.passages  # the very collection the store queries, used raw
    rng = np.random.default_rng(7)
    rows: list[Row] = []
    for scale in sorted(settings.scales):
        inserted = grow(store, collection, scale, settings, rng)
        rows.extend(_rows_at(scale, store, collection, inserted, settings, data_dir, rng))
    if FULL_SCALE not in settings.scales:
        rows.append(Row(BENCH, "top-10 query at 1,000,000 passages", None, None, "ms", Target("figure", "<=", 20, "ms"),
                        note="not measured in this run (python -m benchmarks --full)"))
    return rows


def _rows_at(scale, store, collection, inserted, settings, data_dir, rng) -> list[Row]:
    label = f"{scale:,} passages"
    queries = unit_vectors(rng, settings.queries)
    plain = query_latencies(store, collection, queries)
    five_pages = [f"https://synthetic.invalid/ours/{i * settings.doc_passages}" for i in range(5)]
    filtered = query_latencies(store, collection, queries, urls=five_pages)
    ours_memory = probe_memory(data_dir, collection.name, "ours", settings.queries)
    raw_memory = probe_memory(data_dir, collection.name, "raw", settings.queries)
    ours_rate, raw_rate = rate(inserted["ours"]), rate(inserted["raw"])
    grown = sum(n for side in inserted.values() for n, _ in side)
    return [
        Row.paired(BENCH, f"top-10 query at {label}", plain["ours"], plain["raw"], "ms",
                   Target("figure", "<=", 20, "ms"), f"median of {len(queries)} queries"),
        Row.paired(BENCH, f"top-10 query of 5 pages at {label}", filtered["ours"], filtered["raw"], "ms",
                   note="restricted to 5 pages (where page $in ...), as the pipeline asks"),
        Row(BENCH, f"insert rate up to {label}", ours_rate, raw_rate, "passages/s",
            note=f"{grown:,} passages added; ours: add_document, {settings.doc_passages} passages a document; "
                 f"raw: collection.add, {settings.insert_batch} a call"),
        Row(BENCH, f"memory (RSS) at {label}", ours_memory["rss_mb"], raw_memory["rss_mb"], "MB",
            note=f"fresh process after {settings.queries} queries; peak {ours_memory['peak_mb']:.0f} / "
                 f"{raw_memory['peak_mb']:.0f} MB"),
    ]
