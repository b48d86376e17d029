"""The HTTP fetcher and extractor against the test web's misbehaving pages."""

from __future__ import annotations

import asyncio

import pytest

from localsearch.config import Config
from localsearch.plugins import pm
from localsearch.types import FetchStatus, Page


@pytest.fixture
def config(home, web):
    # The test web is on 127.0.0.1, which the URL policy refuses unless the user allows it:
    # allow exactly its port.
    return Config.load({"fetch_timeout": 2.0, "max_page_bytes": 3_000_000, "max_redirects": 4,
                        "allowed_hosts": [f"{web.host}:{web.port}"]})


def fetch(url, config) -> Page:
    """Ask the fetchers as the pipeline does: in order, each awaited, until one takes the URL."""
    from localsearch.documents import _first_page
    from localsearch.workers import Workers

    workers = Workers(2, 2)
    try:
        return asyncio.run(_first_page(url, config, workers))
    finally:
        workers.close()


@pytest.mark.parametrize("path, status, reason", [
    ("/status/404", FetchStatus.HTTP_ERROR, "HTTP 404"),
    ("/status/500", FetchStatus.HTTP_ERROR, "HTTP 500"),
    ("/slow?seconds=5", FetchStatus.TIMEOUT, "2 s"),
    ("/file.pdf", FetchStatus.NOT_HTML, "application/pdf"),
    ("/binary", FetchStatus.NOT_HTML, "application/octet-stream"),
    ("/png-as-html", FetchStatus.NOT_HTML, "binary content labelled as HTML"),
    ("/huge", FetchStatus.TOO_LARGE, "cap"),
    ("/huge-nolength", FetchStatus.TOO_LARGE, "cap"),
    ("/redirect-loop/a", FetchStatus.REDIRECT_LOOP, "/redirect-loop/a"),
    ("/gzip-bomb", FetchStatus.TOO_LARGE, "unpacks to over"),
])
def test_bad_pages_get_a_clear_status(web, config, path, status, reason):
    page = fetch(web.url + path, config)
    assert page.status == status
    assert reason in page.reason
    assert page.html == ""


def test_unreachable_host_is_an_error_not_a_crash(config):
    config = config.replace(allowed_hosts=config.allowed_hosts + ["127.0.0.1:9"])
    page = fetch("http://127.0.0.1:9/nothing", config)  # port 9: nothing listens
    assert page.status == FetchStatus.ERROR and page.reason


def test_redirect_is_followed(web, config):
    page = fetch(web.url + "/redirect/harrowmere-lighthouse", config)
    assert page.ok and page.final_url == web.url + "/articles/harrowmere-lighthouse"
    assert "Harrowmere" in page.html


@pytest.mark.parametrize("slug, expected", [
    ("velkaro-glass-beetle", "iso-8859-1 header"),
    ("oldenvale-saffron-plum-tart", "windows-1252 meta"),
])
def test_legacy_encodings_decode_like_a_browser(web, config, slug, expected):
    from testweb import articles

    article = next(a for a in articles() if a.slug == slug)
    page = fetch(web.url + article.path, config)
    assert page.ok, page.reason
    assert "\ufffd" not in page.html
    source = article.body.decode("cp1252" if article.encoding.startswith(("iso", "windows")) else article.encoding)
    assert page.html == source
    assert any(ord(ch) > 127 for ch in page.html)  # the accents really arrived as text


def test_raw_deflate_is_unpacked(web, config):
    page = fetch(web.url + "/deflate-raw", config)
    assert page.ok and "Harrowmere" in page.html


@pytest.mark.parametrize("path", ["/meta-base64", "/meta-utf16"])
def test_nonsense_meta_charsets_fall_back_to_utf8(web, config, path):
    from testweb import CHARSET_TEXT

    page = fetch(web.url + path, config)
    assert page.ok and CHARSET_TEXT in page.html


def test_invalid_utf8_is_replaced_and_noted(web, config):
    page = fetch(web.url + "/bad-utf8", config)
    assert page.ok
    assert "\ufffd" in page.html and "replaced" in page.reason


def test_extraction_skips_boilerplate_and_empty_pages(web, config):
    page = fetch(web.url + "/articles/harrowmere-lighthouse", config)
    document = pm.hook.extract_document(page=page, config=config)
    assert document.title and "Harrowmere" in document.text
    assert "cookie" not in document.text.lower()


def test_a_page_of_menus_only_is_no_content(web, home, monkeypatch):
    from localsearch.pipeline import Pipeline

    monkeypatch.setenv("LOCALSEARCH_ALLOWED_HOSTS", f"{web.host}:{web.port}")
    done = list(Pipeline().index([web.url + "/empty"]))[-1]
    page = done.data["pages"][web.url + "/empty"]
    assert page == {"status": "no content", "reason": "main text has fewer than 20 words"}


def test_local_files_fetch_as_file_urls(tmp_path, config):
    page_file = tmp_path / "note.html"
    page_file.write_text("<html><body><p>Local notes.</p></body></html>", encoding="utf-8")
    assert fetch(page_file.as_uri(), config).ok
    text_file = tmp_path / "notes.txt"
    text_file.write_text("plain")
    assert fetch(text_file.as_uri(), config).status == FetchStatus.NOT_HTML
    assert fetch((tmp_path / "missing.html").as_uri(), config).status == FetchStatus.HTTP_ERROR
    assert fetch("ftp://example.org/x", config) is None  # not ours: the async fetcher declines


def test_chunks_respect_boundaries_and_offsets(web, config):
    page = fetch(web.url + "/articles/quillstone-3-release", config)
    document = pm.hook.extract_document(page=page, config=config)
    passages = pm.hook.chunk_document(document=document, config=config)
    assert len(passages) > 2
    for passage in passages:
        assert document.text[passage.start:passage.end] == passage.text
        assert len(passage.text) <= config.chunk_chars or "\n" not in passage.text
        assert passage.text[-1] in ".!?:;)\"”’" or passage.end == len(document.text) or \
            document.text[passage.end] == "\n"  # ends at a sentence or paragraph boundary
    covered = "".join(document.text[p.start:p.end] for p in passages).replace("\n", "")
    assert len(covered) >= 0.95 * len(document.text.replace("\n", ""))


def test_a_redirect_never_leads_into_an_allowed_folder(web, config, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "diary.html").write_text("<html><body><p>" + "private words " * 30 + "</p></body></html>")
    allowed = config.replace(allowed_folders=[str(notes)])
    assert fetch((notes / "diary.html").as_uri(), allowed).ok  # named by a plugin's engine: read
    target = (notes / "diary.html").as_uri()
    for mode in ("never", "always"):  # the HTTP fetcher, and the browser's gate
        # 10 s: the browser starts within the page's time, slow on a loaded machine.
        page = fetch(f"{web.url}/redirect-to?url={target}", allowed.replace(browser_fetch=mode, fetch_timeout=10.0))
        assert page.status == FetchStatus.BLOCKED and "only to http and https" in page.reason, (mode, page)
