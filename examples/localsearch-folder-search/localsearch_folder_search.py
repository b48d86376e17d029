"""A localsearch plugin: a search engine over a folder of your own files, so answers can cite
your notes, papers and saved pages beside (or instead of) the web.

- ``register_search_engines``: the engine ``folder`` finds the files of ``folder_search_path``
  (Markdown, text, HTML and PDF) that share the most words with the query; its results are
  ``file://`` URLs, and nothing leaves the machine.
- ``fetch_page``: reads those files for the pipeline, turning Markdown, text and PDF (through
  the small ``pypdf`` library) into simple HTML; ``.html`` files are read by the built-in
  fetcher.
- ``register_settings``: ``folder_search_path``, ``folder_search_max_files``.

localsearch reads ``file:`` URLs only in folders you allow: put the same folder in the
``allowed_folders`` setting.
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from localsearch import hookimpl
from localsearch.errors import SearchEngineError
from localsearch.types import FetchStatus, Page, SearchResult

TEXT_TYPES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".pdf": "pdf"}
READABLE = set(TEXT_TYPES) | {".html", ".htm"}
MAX_CHARS = 400_000  # of one file's text: a huge log file is read only this far


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _folder(config) -> Path:
    configured = (config.folder_search_path or "").strip()
    if not configured:
        raise SearchEngineError("folder_search_path is not set (the folder of files to search)")
    folder = Path(configured).expanduser().resolve()
    if not folder.is_dir():
        raise SearchEngineError(f"folder_search_path {configured!r} is not a folder")
    allowed = [Path(f).expanduser().resolve() for f in config.allowed_folders]
    if not any(folder == a or a in folder.parents for a in allowed):
        raise SearchEngineError(f"localsearch may not read {folder}: add it to the allowed_folders setting")
    return folder


def file_text(path: Path) -> str:
    """The text of a file this plugin reads ("" if it cannot)."""
    kind = TEXT_TYPES.get(path.suffix.lower())
    try:
        if kind == "pdf":
            from pypdf import PdfReader

            reader = PdfReader(str(path))
            return "\n\n".join(page.extract_text() or "" for page in reader.pages)[:MAX_CHARS]
        raw = path.read_text(encoding="utf-8", errors="replace")[:MAX_CHARS]
    except Exception:  # a broken file is simply not found, never a failed question
        return ""
    if path.suffix.lower() in (".html", ".htm"):
        return re.sub(r"<[^>]+>", " ", re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", raw))
    return raw


def title_of(path: Path, text: str) -> str:
    heading = re.search(r"^#\s+(.+)$", text, re.M) if path.suffix.lower() in (".md", ".markdown") else None
    if heading:
        return heading.group(1).strip()
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first[:80] if path.suffix.lower() == ".pdf" and first else path.stem.replace("-", " ").replace("_", " ")


class FolderEngine:
    name = "folder"
    network = False  # the user's own files: nothing is sent out

    def search(self, query, limit, context):
        config = context.config
        folder = _folder(config)
        files = [p for p in sorted(folder.rglob("*")) if p.suffix.lower() in READABLE and p.is_file()]
        files = files[: config.folder_search_max_files]
        texts = {path: file_text(path) for path in files}
        words = {path: _words(text) for path, text in texts.items()}
        terms = set(_words(query))
        ranked = []
        for path, found in words.items():
            score = 0.0
            for term in terms:
                documents = sum(term in w for w in words.values())
                count = found.count(term)
                if count:
                    score += (1 + math.log(count)) * math.log((len(files) + 1) / (documents + 0.5))
            if score > 0:
                ranked.append((score, path))
        ranked.sort(key=lambda pair: -pair[0])
        return [SearchResult(url=path.as_uri(), title=title_of(path, texts[path]),
                             snippet=" ".join(texts[path].split())[:200], engine=self.name)
                for _, path in ranked[:limit]]


def as_html(path: Path, text: str) -> str:
    """Text as an HTML article: Markdown headings become headings, blank lines paragraphs."""
    parts = []
    for block in re.split(r"\n\s*\n", text):
        block = block.strip()
        if not block:
            continue
        heading = re.match(r"^(#{1,6})\s+(.+)$", block) if path.suffix.lower() in (".md", ".markdown") else None
        if heading and "\n" not in block:
            level = len(heading.group(1))
            parts.append(f"<h{level}>{html.escape(heading.group(2))}</h{level}>")
        else:
            parts.append(f"<p>{html.escape(' '.join(block.split()))}</p>")
    title = html.escape(title_of(path, text))
    return f"<!DOCTYPE html><html><head><title>{title}</title></head><body><article>{''.join(parts)}</article></body></html>"


@hookimpl
def fetch_page(url, config):
    parts = urlsplit(url)
    path = Path(unquote(parts.path))
    if parts.scheme != "file" or path.suffix.lower() not in TEXT_TYPES:
        return None  # web pages, and .html files: the built-in fetchers read them
    if not path.is_file():
        return Page(url, FetchStatus.HTTP_ERROR, reason="no such file")
    text = file_text(path)
    if not text.strip():
        return Page(url, FetchStatus.NO_CONTENT, reason=f"no text could be read from {path.name}")
    return Page(url, FetchStatus.OK, final_url=url, html=as_html(path, text), content_type="text/html",
                title=title_of(path, text))


@hookimpl
def register_settings(register):
    register("folder_search_path", "", "the folder the `folder` engine searches (also list it in allowed_folders)")
    register("folder_search_max_files", 2000, "most files the `folder` engine reads per query")


@hookimpl
def register_search_engines(register):
    register(FolderEngine())
