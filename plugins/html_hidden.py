"""What a page hides from its reader: elements not displayed, invisible, transparent, of no
size or clipped to none, moved far off the screen, or for screen readers only (inline, or by the
page's own stylesheet). Such text is not the page's content, and it is where a page hides what it
says only to machines (prompt injection); ``drop_hidden`` takes it out before the page is read.
"""

from __future__ import annotations

import re

__all__ = ["drop_hidden", "hidden"]

# Text a reader of the page never sees is not the page's content, and is where a page hides
# what it says only to machines. Hidden: not displayed, invisible, transparent, of no size or
# clipped to none, or moved far off the screen. Not detected: text coloured like its background.
_HIDING = [re.compile(p) for p in (
    r"(?:^|;)display:none", r"(?:^|;)visibility:(?:hidden|collapse)", r"(?:^|;)opacity:0*(?:\.0*)?%?(?:;|$|!)",
    r"(?:^|;)font-size:0(?:px|em|rem|pt|%)?(?:;|$|!)", r"(?:^|;)color:transparent",
    r"(?:^|;)clip:rect\(0?(?:px)?,?0?(?:px)?,?0?(?:px)?,?0?(?:px)?\)", r"(?:^|;)clip:rect\(1px,?1px,?1px,?1px\)",
    r"(?:^|;)clip-path:(?:inset\((?:50|100)%\)|circle\(0)",
    r"(?:^|;)(?:margin-left|margin-top|text-indent):-(?:\d{3,}(?:\.\d+)?px|\d{2,}(?:\.\d+)?r?em)",
    r"translate[xy]?\(-(?:\d{3,}px|\d{2,}r?em)")]
# An offset moves an element only when it is positioned.
_OFF_SCREEN = re.compile(r"(?:^|;)(?:left|top|right|bottom):-(?:\d{3,}(?:\.\d+)?px|\d{2,}(?:\.\d+)?r?em)")
_POSITIONED = re.compile(r"(?:^|;)position:(?:absolute|fixed|relative)")
_NO_SIZE = re.compile(r"(?:^|;)(?:max-)?(?:width|height):(?:0|1px)[a-z%]*(?:;|$|!)")
_OVERFLOW_HIDDEN = re.compile(r"(?:^|;)overflow(?:-[xy])?:(?:hidden|clip)")
# Classes that put text only in front of a screen reader.
_SCREEN_READER_ONLY = {"sr-only", "visually-hidden", "visuallyhidden", "screen-reader-text"}


def _hides(style: str) -> bool:
    """Whether CSS declarations (``display: none; ...``) hide what they apply to."""
    style = re.sub(r"\s+", "", style).lower()
    if not style:
        return False
    return (any(p.search(style) for p in _HIDING)
            or (_OFF_SCREEN.search(style) is not None and _POSITIONED.search(style) is not None)
            or (_NO_SIZE.search(style) is not None and _OVERFLOW_HIDDEN.search(style) is not None))


def hidden(element) -> bool:
    """Whether ``element`` itself is hidden (its attributes and inline style)."""
    if element.get("hidden") is not None or (element.get("aria-hidden") or "").strip().lower() == "true":
        return True
    if _SCREEN_READER_ONLY & set((element.get("class") or "").split()):
        return True
    return _hides(element.get("style") or "")


_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_AT_BLOCK = re.compile(r"@[^{};]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}")  # @media print { ... }: not the screen
_SIMPLE_SELECTOR = re.compile(r"\s*(?:[a-z][\w-]*)?([.#])([\w-]+)\s*", re.I)


def _hidden_by_stylesheet(tree) -> tuple[set[str], set[str]]:
    """The classes and ids the page's own ``<style>`` hides (simple ``.name`` and ``#name``
    selectors; rules inside ``@media`` and other at-rules are not for every screen)."""
    classes, ids = set(), set()
    for style in tree.iter("style"):
        css = _AT_BLOCK.sub("", re.sub(r"/\*.*?\*/", "", style.text or "", flags=re.S))
        for selectors, declarations in _RULE.findall(css):
            if not _hides(declarations):
                continue
            for selector in selectors.split(","):
                match = _SIMPLE_SELECTOR.fullmatch(selector)
                if match:
                    (classes if match.group(1) == "." else ids).add(match.group(2))
    return classes, ids


def drop_hidden(tree) -> None:
    """Take out of ``tree`` every element its reader would not see (see ``hidden``, and the
    page's own stylesheet), keeping the text that follows each."""
    classes, ids = _hidden_by_stylesheet(tree)
    doomed = [e for e in tree.iter() if isinstance(e.tag, str) and e.tag not in ("html", "body")
              and (hidden(e) or e.get("id") in ids or classes & set((e.get("class") or "").split()))]
    for element in doomed:
        parent = element.getparent()
        if parent is None:
            continue
        if element.tail:  # the text after the element is the parent's, and stays
            previous = element.getprevious()
            if previous is not None:
                previous.tail = (previous.tail or "") + element.tail
            else:
                parent.text = (parent.text or "") + element.tail
        parent.remove(element)
