"""An HTML page's main content as blocks of text that keep the page's structure.

Each block is one paragraph, heading, list item, definition term, table row or code block,
with the heading path it sits under (``"Server Configuration › port (integer)"``). Prose has
its white space collapsed, so a paragraph the HTML wraps over many lines is one line of text;
code keeps its lines exactly. Inline code is written in backticks, so that later stages can
tell code from prose and leave it alone.

Why not trafilatura's tree: on reference pages (DocBook, AsciiDoc) it drops headings and
definition lists, so a ``<dd>`` loses the ``<dt>`` that says what it describes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .html_hidden import drop_hidden, hidden

__all__ = ["Block", "Image", "page_blocks", "page_content", "render"]

# Elements whose content is never main text.
_DROPPED = {"script", "style", "noscript", "template", "svg", "iframe", "object", "embed", "canvas", "nav",
            "aside", "form", "button", "select", "input", "textarea", "label", "head", "title", "meta", "link",
            "dialog", "menu", "video", "audio", "picture", "img", "map", "footer"}
# class / id words that mark site furniture around the content.
_FURNITURE = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|navheader|navfooter|navigation|menu|breadcrumbs?|sidebar|footer|cookie|consent|"
    r"banner|share|sharing|social|related|comments?|advert|ads?|ad-\w+|promo|newsletter|subscribe|"
    r"skip|toc|pagination|pager|byline|signup|popup|modal)(?:$|[\s_-])", re.I)
_HEADING = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Elements that start a new block; anything else is inline and joins the text around it.
_BLOCK = {"p", "div", "section", "article", "main", "header", "li", "ul", "ol", "dl", "dt", "dd", "pre", "table",
          "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "blockquote", "figure", "figcaption", "hr",
          "address", "details", "summary", "center", "body", "html", *_HEADING}
_CODE = {"code", "tt", "kbd", "samp", "var"}
_FOOTNOTE_MARK = re.compile(r"\[?\s*\d{1,3}\s*\]?")
_SPACE = re.compile(r"\s+")
MAX_PATH_PART = 120  # a heading or term longer than this is cut in the path
MAX_ROW = 1200  # a row of a layout table longer than this is read as blocks, not as one row


@dataclass
class Block:
    """One unit of a page's text. ``kind``: heading, text, item, term, definition, row or code."""

    kind: str
    text: str
    path: tuple[str, ...] = ()


@dataclass
class Image:
    """An ``<img>`` of the main content: its address as written (``src``, else a lazy loader's
    ``data-src``, else the largest of ``srcset``), alt text, heading path and stated size."""

    src: str
    alt: str = ""
    path: tuple[str, ...] = ()
    width: int = 0
    height: int = 0


def _furniture(element) -> bool:
    names = f"{element.get('class') or ''} {element.get('id') or ''}".strip()
    return bool(names) and _FURNITURE.search(names) is not None


_ANCHOR_CLASSES = re.compile(r"(?:^|\s)(?:headerlink|anchor|anchorjs-link|permalink|heading-anchor|hash-link|"
                             r"header-anchor|anchor-link|autolink)(?:$|\s)", re.I)
_ANCHOR_TEXT = {"", "¶", "§", "#", "🔗", "permalink", "link", "anchor"}


def _anchor_link(element) -> bool:
    """A link to its own heading or term (Sphinx's "¶", a "#" or "§" beside a heading)."""
    text = _SPACE.sub(" ", element.text_content()).strip().lower()
    own = _ANCHOR_CLASSES.search(element.get("class") or "") or (element.get("href") or "").startswith("#")
    return bool(own) and text in _ANCHOR_TEXT


def _text_of(element) -> str:
    """The text of a heading or term, without the anchor link beside it."""
    parts = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str) and not (child.tag == "a" and _anchor_link(child)):  # not a comment
            parts.append(_text_of(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _link_heavy(element) -> bool:
    """A list or box that is mostly links (a table of contents, a menu): not content."""
    links = element.findall(".//a")
    if len(links) < 3:
        return False
    text = len(_SPACE.sub("", element.text_content()))
    linked = sum(len(_SPACE.sub("", a.text_content())) for a in links)
    return text > 0 and linked / text > 0.6


class _Walker:
    """Walks an element tree depth first, gathering inline text into blocks."""

    def __init__(self):
        self.blocks: list[Block] = []
        self.inline: list[str] = []
        self.headings: list[tuple[int, str]] = []  # (level, text)
        self.terms: list[str] = []  # the definition terms whose description is being read
        self.kind = "text"
        self.images: list[Image] = []

    def path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self.headings) + tuple(self.terms)

    def flush(self) -> None:
        text = _SPACE.sub(" ", "".join(self.inline)).strip()
        self.inline = []
        if text and re.search(r"\w", text):
            self.blocks.append(Block(self.kind, text, self.path()))

    def walk(self, element) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in ("img", "picture") and not hidden(element):
            self._images(element)  # their text is read by image_text plugins, if wanted
        if not tag or tag in _DROPPED or hidden(element) or (tag not in ("body", "html") and _furniture(element)):
            self._tail(element)
            return
        if tag in ("ul", "ol", "table", "div") and _link_heavy(element):
            self._tail(element)
            return
        if tag == "a" and _anchor_link(element):
            self._tail(element)  # "¶" beside a heading says nothing, and leaks into its path
            return
        if tag in _HEADING:
            self.flush()
            self._heading(element, _HEADING[tag])
        elif tag == "p" and "title" in (element.get("class") or "").split():
            # DocBook's title of a table, example or figure ("Table 8.2. Numeric Types"):
            # it heads the box it opens, below every real heading.
            self.flush()
            self._heading(element, 7)
        elif tag == "pre":
            self.flush()
            code = element.text_content().expandtabs().rstrip()
            code = "\n".join(line.rstrip() for line in code.lstrip("\n").splitlines())
            if code.strip() and _prose(code):
                # Plain text laid out in <pre> (a mail, a howto): its paragraphs are prose.
                for paragraph in re.split(r"\n\s*\n", code):
                    text = _SPACE.sub(" ", paragraph).strip()
                    if text:
                        self.blocks.append(Block(self.kind, text, self.path()))
            elif code.strip():
                self.blocks.append(Block("code", code, self.path()))
        elif tag == "table":
            self.flush()
            self._table(element)
        elif tag == "dl":
            self.flush()
            self._definitions(element)
        elif tag in _BLOCK:
            self.flush()
            outer, headings, terms, first = self.kind, list(self.headings), list(self.terms), len(self.blocks)
            if tag == "li" and outer != "definition":  # a list inside a description describes its term
                self.kind = "item"
            self._children(element)
            self.flush()
            self.kind = outer
            # A heading inside a box (a section, a note) heads only the box: after it, the
            # path is what it was. A box of headings alone (DocBook's titlepage) heads what follows.
            if any(b.kind != "heading" for b in self.blocks[first:]):
                self.headings, self.terms = headings, terms
        elif tag == "br":
            self.inline.append(" ")
        elif tag == "sup" and _FOOTNOTE_MARK.fullmatch(element.text_content().strip()):
            pass  # a footnote reference ("[2]") says nothing without its footnote
        elif tag in _CODE:
            code = _SPACE.sub(" ", element.text_content()).strip()
            if code:
                self.inline.append(f"`{code.replace('`', '')}`")
        else:
            self._children(element)
        self._tail(element)

    def _images(self, element) -> None:
        for img in element.iter("img"):
            if hidden(img):
                continue
            src = (img.get("src") or "").strip()
            if not src or src.startswith("data:image/gif"):  # none yet, or a lazy loader's placeholder pixel
                src = (img.get("data-src") or "").strip() or \
                    _largest(img.get("srcset") or img.get("data-srcset") or "") or src
            if src:
                alt = _SPACE.sub(" ", img.get("alt") or "").strip()[:MAX_PATH_PART]
                self.images.append(Image(src, alt, self.path(), _pixels(img.get("width")), _pixels(img.get("height"))))

    def _children(self, element) -> None:
        if element.text:
            self.inline.append(element.text)
        for child in element:
            self.walk(child)

    def _tail(self, element) -> None:
        if element.tail:
            self.inline.append(element.tail)

    def _heading(self, element, level: int) -> None:
        text = _SPACE.sub(" ", _text_of(element)).strip()
        if not text:
            return
        self.terms = []
        self.headings = [(lv, t) for lv, t in self.headings if lv < level] + [(level, text[:MAX_PATH_PART])]
        self.blocks.append(Block("heading", text, self.path()))

    def _definitions(self, element) -> None:
        """``<dt>`` terms join the path of their ``<dd>`` descriptions: a description read
        alone still says what it describes."""
        outer_terms, outer_kind = list(self.terms), self.kind
        pending: list[str] = []
        for child in element:
            tag = child.tag if isinstance(child.tag, str) else ""
            if tag == "div":  # HTML allows dt/dd pairs wrapped in a div
                self._definitions(child)
                continue
            if tag == "dt":
                text = _SPACE.sub(" ", _text_of(child)).strip()
                if not text:
                    continue
                if not pending:  # a new entry: the terms of the one before are done
                    self.terms = list(outer_terms)
                pending.append(text)
                self.terms = outer_terms + [", ".join(pending)[:MAX_PATH_PART]]
                self.kind = "term"
                self.inline.append(_inline_text(child))
                self.flush()
            elif tag == "dd":
                pending = []
                self.kind = "definition"
                self._children(child)
                self.flush()
            self.kind = outer_kind
        self.terms = outer_terms
        self.kind = outer_kind

    def _table(self, table) -> None:
        """A table's caption names it in the path of its rows."""
        outer = list(self.terms)
        caption = table.find("caption")
        text = _SPACE.sub(" ", caption.text_content()).strip() if caption is not None else ""
        if text:
            self.blocks.append(Block("heading", text, self.path()))
            self.terms = outer + [text[:MAX_PATH_PART]]
        if _layout_table(table):
            self._layout_rows(table)
        else:
            self._data_rows(table)
        self.terms = outer

    def _layout_rows(self, table) -> None:
        """A table whose cells hold paragraphs: a short row (a function with its description
        and example, a note with its icon) is one row, its paragraphs run together; a long
        one (a page laid out in a table) is read as the blocks it holds."""
        for row in table.iter("tr"):
            if any(isinstance(t.tag, str) and t.tag == "table" for t in row.iter()) or \
                    len(_SPACE.sub(" ", row.text_content())) > MAX_ROW:
                self._children(row)
                self.flush()
                continue
            inner = _Walker()
            inner.headings, inner.terms = self.headings, self.terms
            for cell in row:
                inner.walk(cell)
                inner.flush()
            self.images += inner.images
            text = " ".join(b.text.replace("\n", " ") for b in inner.blocks)
            if text:
                self.blocks.append(Block("row", text, self.path()))

    def _data_rows(self, element) -> None:
        header: list[str] = []
        header_said = True  # whether the header row is in the blocks (or need not be)
        for row in element.iter("tr"):
            cells = [c for c in row if isinstance(c.tag, str) and c.tag in ("td", "th")]
            texts = [_inline_text(c) for c in cells]
            if not any(texts):
                continue
            if all(c.tag == "th" for c in cells) or (row.getparent() is not None and row.getparent().tag == "thead"):
                header, header_said = texts, False
                continue
            if len(header) > 1 and len(header) == len(texts):
                # Each cell with its column's name: a row read alone says what its values are
                # (and the header row needs no block of its own).
                parts = [f"{h}: {t}" if h else t for h, t in zip(header, texts) if t]
                header_said = True
            else:
                if not header_said:  # a row that cannot be paired: the header is said once, before it
                    self.blocks.append(Block("row", " | ".join(t for t in header if t), self.path()))
                    header_said = True
                parts = [t for t in texts if t]
            self.blocks.append(Block("row", " | ".join(parts), self.path()))
        if not header_said:  # a table of a header alone
            self.blocks.append(Block("row", " | ".join(t for t in header if t), self.path()))


_CODE_MARKS = set("{}[]();=<>$#|\\_*&`~")


def _prose(text: str) -> bool:
    """Whether a ``<pre>`` holds prose rather than code or output: a few lines of many words
    each, mostly letters, with almost none of the marks code is made of."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 3:
        return False
    marks = sum(ch in _CODE_MARKS for ch in text) / len(text)
    visible = [ch for ch in text if not ch.isspace()]
    letters = sum(ch.isalpha() for ch in visible) / len(visible)  # not numbers, hashes, output
    words_per_line = sum(len(line.split()) for line in lines) / len(lines)
    prompts = sum(line.lstrip()[:1] in "#$>%;" for line in lines) / len(lines)  # comments, shell, psql
    sentences = len(re.findall(r"[a-z][.!?](?:\s|$)", text))
    return marks < 0.01 and letters >= 0.8 and words_per_line >= 7 and prompts <= 0.1 and sentences >= 1


def _inline_text(element) -> str:
    """The text of a small element (a cell, a term), inline code in backticks."""
    walker = _Walker()
    walker.inline.append(element.text or "")
    for child in element:
        walker.walk(child)
    return _SPACE.sub(" ", "".join(walker.inline)).strip()


def _layout_table(table) -> bool:
    """A table that lays out blocks (an admonition with its icon, a page frame) rather than
    holding data: its cells hold paragraphs, lists or code, or it has a single column."""
    for cell in table.iter("td", "th"):
        if any(isinstance(c.tag, str) and c.tag in ("p", "div", "pre", "ul", "ol", "dl", "table") for c in cell):
            return True
    rows = [r for r in table.iter("tr")]
    return all(len([c for c in r if isinstance(c.tag, str) and c.tag in ("td", "th")]) <= 1 for r in rows)


def _content_root(tree):
    """The element holding the main content: the one ``<article>`` or ``<main>``, else the body."""
    for query in ("//main", "//*[@role='main']", "//article"):
        found = [e for e in tree.xpath(query) if not hidden(e)]
        if len(found) == 1:
            return found[0]
    body = tree.find("body")
    return body if body is not None else tree


def page_blocks(tree) -> list[Block]:
    """The blocks of a parsed page's main content (``tree``: an lxml.html document)."""
    return page_content(tree)[0]


def page_content(tree) -> tuple[list[Block], list[Image]]:
    """The blocks and the images of a parsed page's main content (what is hidden is taken
    out of ``tree``)."""
    drop_hidden(tree)
    walker = _Walker()
    walker._children(_content_root(tree))
    walker.flush()
    return walker.blocks, walker.images


def _pixels(value) -> int:
    match = re.fullmatch(r"\s*(\d{1,6})(?:px)?\s*", value or "")
    return int(match.group(1)) if match else 0


def _largest(srcset: str) -> str:
    """The candidate of a ``srcset`` with the largest width or density ("a.png 1x, b.png 2x")."""
    best, best_size = "", -1.0
    for candidate in srcset.split(","):
        parts = candidate.split()
        if not parts:
            continue
        size = 1.0
        if len(parts) > 1:
            try:
                size = float(parts[1][:-1]) if parts[1][-1:] in ("w", "x") else 1.0
            except ValueError:
                size = 1.0
        if size > best_size:
            best, best_size = parts[0], size
    return best


def render(blocks: list[Block]) -> tuple[str, list[tuple[int, int]]]:
    """The text of ``blocks``, one line per block (code keeps its lines), and each block's
    (start, end) in it."""
    parts, spans, offset = [], [], 0
    for block in blocks:
        spans.append((offset, offset + len(block.text)))
        parts.append(block.text)
        offset += len(block.text) + 1
    return "\n".join(parts), spans
