"""The chroma store on disk: passages of a few pages by id, pages replaced whole."""

from __future__ import annotations

import numpy as np
import pytest

from localsearch.config import Config
from localsearch.types import Document, Passage


@pytest.fixture
def store(tmp_path):
    from localsearch.plugins import pm

    return pm.hook.vector_store(config=Config.load({"data_dir": str(tmp_path)}), embedder_name="test-embedder")


def unit(rng, n, size=16):
    vectors = rng.normal(size=(n, size)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def add_page(store, url, texts, vectors):
    text, passages = "", []
    for piece in texts:
        start = len(text)
        text += piece + "\n"
        passages.append(Passage(url=url, text=piece, start=start, end=start + len(piece)))
    store.add_document(Document(url=url, text=text, title=url), passages, vectors.tolist())


def raw_restricted(store, vector, k, urls):
    from localsearch_plugins.chroma_store import _page_id

    pages = [_page_id(u) for u in urls]
    found = store.passages.query(query_embeddings=[vector.tolist()], n_results=k,
                                 where={"page": {"$in": pages}}, include=["documents", "distances"])
    return [(text, round(1 - d, 4)) for text, d in zip(found["documents"][0], found["distances"][0])]


def assert_same(passages, raw):
    assert [p.text for p in passages] == [text for text, _ in raw]
    assert [p.score for p in passages] == pytest.approx([score for _, score in raw], abs=1e-3)


def test_passages_of_a_few_pages_match_the_filtered_chroma_query(store):
    rng = np.random.default_rng(3)
    urls = [f"https://example.org/{i}" for i in range(12)]
    for i, url in enumerate(urls):
        add_page(store, url, [f"page {i} passage {j}" for j in range(8)], unit(rng, 8))
    query = unit(rng, 1)[0]
    wanted = urls[2:7]
    ours = store.query(query.tolist(), 10, urls=wanted)
    assert_same(ours, raw_restricted(store, query, 10, wanted))
    assert {p.url for p in ours} <= set(wanted)
    assert [p.score for p in ours] == sorted((p.score for p in ours), reverse=True)
    assert store.query(query.tolist(), 10, urls=["https://example.org/never-stored"]) == []


def test_a_page_stored_again_keeps_none_of_its_old_passages(store):
    rng = np.random.default_rng(4)
    add_page(store, "https://example.org/a", [f"old passage {j}" for j in range(6)], unit(rng, 6))
    add_page(store, "https://example.org/b", ["another page"], unit(rng, 1))
    add_page(store, "https://example.org/a", ["new text, shorter", "and different"], unit(rng, 2))
    assert store.count() == 3
    texts = {p.text for p in store.query(unit(rng, 1)[0].tolist(), 10)}
    assert texts == {"new text, shorter", "and different", "another page"}


def test_pages_stored_without_a_passage_list_are_still_found_and_replaced(store):
    rng = np.random.default_rng(5)
    add_page(store, "https://example.org/old", [f"old {j}" for j in range(4)], unit(rng, 4))
    add_page(store, "https://example.org/new", [f"new {j}" for j in range(4)], unit(rng, 4))
    from localsearch_plugins.chroma_store import _page_id

    old_id = _page_id("https://example.org/old")
    record = store.pages.get(ids=[old_id], include=["metadatas"])["metadatas"][0]
    record.pop("spans")  # as an earlier version stored it
    store.pages.delete(ids=[old_id])
    store.pages.upsert(ids=[old_id], documents=["x"], embeddings=[unit(rng, 1)[0].tolist()], metadatas=[record])
    query = unit(rng, 1)[0]
    both = ["https://example.org/old", "https://example.org/new"]
    assert_same(store.query(query.tolist(), 5, urls=both), raw_restricted(store, query, 5, both))
    add_page(store, "https://example.org/old", ["replaced"], unit(rng, 1))
    assert store.count() == 5


def test_a_new_page_is_added_without_filtering_the_index(store, monkeypatch):
    rng = np.random.default_rng(6)
    add_page(store, "https://example.org/first", ["one", "two"], unit(rng, 2))
    collection_type, filters = type(store.passages), []
    original_delete = collection_type.delete

    def spy(self, ids=None, where=None, **kwargs):
        if where is not None:
            filters.append(where)
        return original_delete(self, ids=ids, where=where, **kwargs)

    monkeypatch.setattr(collection_type, "delete", spy)
    add_page(store, "https://example.org/second", ["three"], unit(rng, 1))
    add_page(store, "https://example.org/first", ["one again"], unit(rng, 1))
    assert filters == []  # old passages deleted by id, a new page deletes nothing
    assert store.count() == 2


def test_a_page_another_process_is_writing_is_in_no_answer(store):
    from localsearch_plugins.chroma_store import _page_id

    rng = np.random.default_rng(5)
    done, half = "https://example.org/done", "https://example.org/half-written"
    add_page(store, done, [f"done {j}" for j in range(4)], unit(rng, 4))
    add_page(store, half, [f"half {j}" for j in range(4)], unit(rng, 4))
    query = unit(rng, 1)[0].tolist()
    assert {p.url for p in store.query(query, 8)} == {done, half}
    # What a writer leaves while its passages go in (or when it was killed there).
    record = store.pages.get(ids=[_page_id(half)], include=["metadatas"])["metadatas"][0]
    store.pages.update(ids=[_page_id(half)], metadatas=[{**record, "writing": 1}])
    assert {p.url for p in store.query(query, 8)} == {done}  # the nearest, over the whole index
    assert {p.url for p in store.query(query, 8, urls=[done, half])} == {done}  # the passages of a few pages
