"""A fresh process that opens the benchmark's store, queries it and prints its memory as JSON:
``python -m benchmarks.store_probe --mode ours|raw --data-dir D --collection NAME ...``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .harness import median, peak_mb, rss_mb, timed


def open_ours(data_dir: str, embedder_name: str):
    from localsearch.config import Config
    from localsearch.plugins import pm

    store = pm.hook.vector_store(config=Config.load({"data_dir": data_dir}), embedder_name=embedder_name)
    return lambda vector: store.query(vector.tolist(), 10)


def open_raw(data_dir: str, collection_name: str):
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(Path(data_dir) / "chroma"), settings=Settings(anonymized_telemetry=False))
    collection = client.get_collection(collection_name)
    return lambda vector: collection.query(query_embeddings=[vector], n_results=10)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["ours", "raw"], required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--collection", required=True)
    parser.add_argument("--embedder-name", required=True)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args(argv)

    import numpy as np

    from .retrieval import unit_vectors

    query = (open_ours(args.data_dir, args.embedder_name) if args.mode == "ours"
             else open_raw(args.data_dir, args.collection))
    vectors = unit_vectors(np.random.default_rng(11), args.queries)
    milliseconds = [1000 * timed(lambda: query(v)) for v in vectors]
    print(json.dumps({"mode": args.mode, "rss_mb": rss_mb(), "peak_mb": peak_mb(),
                      "first_ms": milliseconds[0], "median_ms": median(milliseconds[1:] or milliseconds)}))


if __name__ == "__main__":
    main()
