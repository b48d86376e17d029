"""A follow-up question searched for on its own: "And how tall is it?" finds nothing about the
lighthouse the conversation is about. Its search query carries the names the earlier
questions gave (the lighthouse's), unless it names a subject of its own.

The built-in planner, tried last: a planner plugin (say, one that asks a model to rewrite the
question) takes precedence.
"""

from __future__ import annotations

import re

from localsearch import hookimpl
from localsearch.text import code_terms

# Words that point back at what was said before.
_POINTS_BACK = re.compile(r"\b(?:it|its|it's|they|them|their|theirs|this|that|these|those|there|he|him|his|she|"
                          r"her|hers|the same|one|ones)\b", re.I)
_WORD = re.compile(r"[\w][\w'’.-]*\w|\w")
_OPENERS = {"and", "but", "so", "or", "then", "also", "what", "which", "who", "whom", "whose", "when", "where",
            "why", "how", "is", "are", "was", "were", "do", "does", "did", "can", "could", "will", "would", "should",
            "in", "on", "at", "for", "of", "the", "a", "an", "i", "please", "tell", "show", "give", "list"}


def names(text: str) -> list[str]:
    """The names ``text`` mentions: capitalised words (not a sentence's ordinary first word)
    and technical names (``max_connections``, ``git log``'s ``--oneline``)."""
    found = []
    for sentence in re.split(r"(?<=[.?!])\s+", text.strip()):
        words = _WORD.findall(sentence)
        for position, word in enumerate(words):
            if word[0].isupper() and (position > 0 or word.lower() not in _OPENERS) and word.lower() != "i":
                found.append(word)
    return list(dict.fromkeys(found + code_terms(text)))


@hookimpl(trylast=True)
def plan_queries(question, conversation, config):
    if not conversation:
        return None
    own = names(question)
    if own and not _POINTS_BACK.search(question):
        return None  # a new subject: the question stands alone
    earlier = []
    for turn in reversed(conversation):  # the latest subject first
        earlier.extend(n for n in names(turn.get("question", "")) if n not in earlier and n not in own)
        if earlier:
            break
    if not earlier:
        return None
    return [f"{question.strip()} {' '.join(earlier)}"]
