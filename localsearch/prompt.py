"""The built-in prompt: numbered sources with their best sentences, then the question."""

from __future__ import annotations

from .types import Passage, Source

__all__ = ["default_messages"]

SYSTEM = (
    "You are a search assistant. Answer the question using only the numbered sources. "
    "After each sentence write the number of the source it comes from, like [1]. "
    "If the sources do not contain the answer, say that you do not know. "
    "Answer in at most three short sentences."
)


def default_messages(question: str, sources: list[Source], passages: list[Passage],
                     conversation: list[dict] | None = None) -> list[dict]:
    """Chat messages for ``question``; passages of one source are grouped under its number."""
    number = {s.url: s.n for s in sources}
    titles = {s.url: s.title for s in sources}
    grouped: dict[int, list[Passage]] = {}
    for passage in passages:
        grouped.setdefault(number[passage.url], []).append(passage)
    blocks = []
    for n in sorted(grouped):
        # Document order reads better than score order, and keeps sentences next to their context.
        texts = " ".join(p.text for p in sorted(grouped[n], key=lambda p: p.start))
        url = grouped[n][0].url
        blocks.append(f"[{n}] {titles.get(url) or url}\n{texts}")
    messages = [{"role": "system", "content": SYSTEM}]
    for turn in conversation or []:
        messages.append({"role": "user", "content": turn.get("question", "")})
        messages.append({"role": "assistant", "content": turn.get("answer", "")})
    messages.append({"role": "user",
                     "content": "Sources:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}"})
    return messages
