"""The built-in prompt: numbered sources with their best sentences, then the question."""

from __future__ import annotations

import re

from .text import CHAT_TOKEN_RE, gives_orders, neutralize_citations
from .types import Passage, Source

__all__ = ["default_messages", "HISTORY_CHARS"]

# A follow-up repeats the earlier prompt and reply word for word while they stay under this
# many characters (with the new sources the prompt stays within a 2048-token context); past
# it, earlier turns shrink to their questions and answers.
HISTORY_CHARS = 4000

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
        if not gives_orders(passage.text):  # a page's orders to the model are not shown to it
            grouped.setdefault(number[passage.url], []).append(passage)
    blocks = []
    for n in sorted(grouped):
        # Document order reads better than score order, and keeps sentences next to their context.
        texts = " ".join(_as_data(p.text, p.kind) for p in sorted(grouped[n], key=lambda p: p.start))
        url = grouped[n][0].url
        title = titles.get(url) or url
        blocks.append(f"[{n}] {_as_data(url if gives_orders(title) else title)}\n{texts}")
    latest = conversation[-1] if conversation else {}
    if _continuable(latest):
        # The earlier prompt and reply exactly as the model saw and wrote them: the shared
        # prefix is still in llama.cpp's KV cache, so only the new sources cost prefill.
        messages = [dict(m) for m in latest["messages"]] + [{"role": "assistant", "content": latest["reply"]}]
        heading = "New sources (numbered afresh for this question):"
    else:
        messages = [{"role": "system", "content": SYSTEM}]
        for turn in conversation or []:
            messages.append({"role": "user", "content": turn.get("question", "")})
            messages.append({"role": "assistant", "content": turn.get("answer", "")})
        heading = "Sources:"
    messages.append({"role": "user",
                     "content": heading + "\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}"})
    return messages


# The prompt's own lines: page text must not start one.
_PROMPT_LINE = re.compile(r"^(?=\s*(?:\[\d+\]|(?:new\s+)?sources\b|question\s*:|system\s*:|user\s*:|assistant\s*:))",
                          re.I | re.M)


def _as_data(text: str, kind: str = "text") -> str:
    """Page text (a passage or a title) as the prompt shows it: it cannot pose as a numbered
    source ("[2]" neutralised), start a line of the prompt's own ("Question:", "Sources:"), or
    hold a chat template's control token (``<|im_start|>`` read as ``(im_start)``)."""
    text = CHAT_TOKEN_RE.sub(r"(\1)", neutralize_citations(text))
    if kind != "code":
        return " ".join(text.split())  # prose on one line: no line of it is the prompt's
    return _PROMPT_LINE.sub("  ", text)


def _continuable(turn: dict) -> bool:
    """Whether ``turn`` carries the prompt and raw reply of the model, short enough to repeat."""
    messages, reply = turn.get("messages"), turn.get("reply")
    if not isinstance(messages, list) or not messages or not isinstance(reply, str) or not reply:
        return False
    if not all(isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in
               ("system", "user", "assistant") for m in messages):
        return False
    return sum(len(m["content"]) for m in messages) + len(reply) <= HISTORY_CHARS
