"""2. Embedding: passages/s through the embed plugin vs raw ``SentenceTransformer.encode`` on the
same passages (the test web's chunk passages, repeated)."""

from __future__ import annotations

from functools import cache

from .harness import Row, Target, interleave, timed

BENCH = "2 Embedding"


@cache
def raw_sentence_transformer(location: str):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(location, device="cpu")


def run(config, settings) -> list[Row]:
    from localsearch.plugins import pm

    from .corpus import passages, repeated

    embedder = pm.hook.embedder(config=config)
    texts = repeated(passages(config), settings.embed_passages)
    raw = raw_sentence_transformer(embedder.location)
    batch = embedder.batch_size

    def through_localsearch():
        return len(texts) / timed(lambda: embedder.embed(texts, "passage"))

    def through_sentence_transformers():
        return len(texts) / timed(lambda: raw.encode(texts, batch_size=batch, normalize_embeddings=True))

    runs = interleave({"ours": through_localsearch, "raw": through_sentence_transformers}, settings.reps)
    note = f"{embedder.name}, {len(texts)} passages, batch {batch}"
    return [Row.paired(BENCH, "passages/s", runs["ours"], runs["raw"], "passages/s", Target("ratio", ">=", 0.95), note)]
