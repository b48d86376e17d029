"""The same answer written with the raw libraries only, as a reference for the end-to-end
benchmark: search the test web, fetch 5 pages with httpx, trafilatura, paragraphs of up to 600
characters, sentence-transformers, a chroma collection, the nearest passages up to the same
prompt budget, llama-cpp-python streaming. No extractive answer and no grounding: what is left
is the least work an answer needs."""

from __future__ import annotations

import asyncio
import time
import uuid

CHUNK_CHARS = 600


def search(web_url: str, question: str, max_pages: int) -> list[str]:
    import httpx

    found = httpx.get(f"{web_url}/search", params={"q": question, "format": "json"}, timeout=10).json()
    return [r["url"] for r in found["results"]][:max_pages]


def fetch(urls: list[str]) -> list[tuple[str, str]]:
    import httpx

    async def everything():
        async with httpx.AsyncClient(timeout=10) as client:
            responses = await asyncio.gather(*(client.get(u) for u in urls))
        return [(str(r.url), r.text) for r in responses if r.status_code == 200]

    return asyncio.run(everything())


def paragraphs(text: str) -> list[str]:
    chunks, current = [], ""
    for line in filter(None, (line.strip() for line in text.splitlines())):
        if current and len(current) + 1 + len(line) > CHUNK_CHARS:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    return chunks + ([current] if current else [])


def new_collection(client):
    return client.create_collection(f"raw-{uuid.uuid4().hex[:12]}", embedding_function=None,
                                    configuration={"hnsw": {"space": "cosine"}})


def answer(web_url: str, question: str, *, encoder, llama, client, max_pages: int = 5, top_k: int = 6,
           prompt_chars: int = 2400, max_tokens: int = 256, temperature: float = 0.2, seed: int = 42) -> dict:
    """Seconds from the question to: pages fetched, pages indexed, first token, last token."""
    from localsearch.prompt import SYSTEM
    from trafilatura import bare_extraction

    from .llm import prompt_tokens, raw_stream

    collection = new_collection(client)  # opened before the clock starts, like a warm store
    started = time.perf_counter()
    pages = fetch(search(web_url, question, max_pages))
    fetched = time.perf_counter() - started
    texts, ids, metadatas = [], [], []
    for n, (url, html) in enumerate(pages, 1):
        document = bare_extraction(html, url=url, with_metadata=True, include_comments=False)
        for i, chunk in enumerate(paragraphs(document.text if document else "")):
            texts.append(chunk)
            ids.append(f"{n}:{i}")
            metadatas.append({"n": n, "title": (document.title or url) if document else url})
    collection.add(ids=ids, embeddings=encoder.encode(texts, batch_size=64, normalize_embeddings=True),
                   documents=texts, metadatas=metadatas)
    indexed = time.perf_counter() - started
    query = encoder.encode([question], normalize_embeddings=True)
    hits = collection.query(query_embeddings=query, n_results=min(top_k, len(texts)))
    blocks, budget = [], prompt_chars
    for text, meta in zip(hits["documents"][0], hits["metadatas"][0]):
        if len(text) + 1 <= budget:
            blocks.append(f"[{meta['n']}] {meta['title']}\n{text}")
            budget -= len(text) + 1
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": "Sources:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}"}]
    first = None
    for _ in raw_stream(llama, messages, max_tokens, temperature, seed):
        if first is None:
            first = time.perf_counter() - started
    ended = time.perf_counter() - started
    client.delete_collection(collection.name)
    return {"fetch": fetched, "pages": indexed, "first_token": first, "answer": ended,
            "prompt_tokens": prompt_tokens(llama, messages), "pages_read": len(pages)}
