"""The browser fetcher: pages built by JavaScript read in Debian's Chromium (never `playwright
install`), under the same URL policy as every fetch, with pages that misbehave ending in a
clear per-page status."""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from localsearch.documents import fetch
from localsearch.pipeline import Run
from localsearch.urlpolicy import UrlPolicy

from testweb import RENDERED_TEXT


@pytest.fixture
def read(make_pipeline):
    """Fetch URLs through the plugins, as a question does, with settings a test picks."""
    pipeline = make_pipeline()

    def read(urls, **settings):
        run = Run(pipeline.config.replace(**{"fetch_timeout": 10.0, **settings}), None)
        pages = fetch(list(urls), UrlPolicy.from_config(run.config), pipeline.workers, run)
        read.requests = run.requests.entries()  # what the pages sent out, and what was refused
        return pages

    yield read
    pipeline.close()


class Elsewhere:
    """A server on another loopback address (127.0.0.2), which the test's allowed_hosts does not
    name: it stands for the user's own network, and counts every request that reaches it."""

    def __init__(self):
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"<p>private</p>")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.url = f"http://127.0.0.2:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def elsewhere():
    server = Elsewhere()
    yield server
    server.close()


def test_auto_reads_a_page_built_by_script_in_the_browser_and_leaves_plain_pages_alone(read, web):
    app, article = read([web.url + "/app", web.url + "/articles/harrowmere-lighthouse"])
    assert app.ok and "rendered in the browser" in app.reason and "read in the browser because" in app.reason
    assert RENDERED_TEXT in app.html.replace("&nbsp;", " ") and "Loading..." not in app.html
    assert article.ok and "browser" not in article.reason  # enough text: the plain fetch stands
    never = read([web.url + "/app"], browser_fetch="never")[0]
    assert never.ok and "browser" not in never.reason and "Loading..." in never.html


def test_always_and_browser_domains_read_every_page_there_with_one_browser(read, web):
    from localsearch_plugins.chromium import BROWSER

    first = read([web.url + "/articles/harrowmere-lighthouse"], browser_fetch="always")[0]
    browser = BROWSER._browser
    second = read([web.url + "/articles/kestrel-valley-comet"], browser_fetch="auto", browser_domains=[web.host])[0]
    assert first.ok and second.ok and "rendered in the browser" in first.reason + second.reason
    assert "rendered in the browser" in second.reason
    assert BROWSER._browser is browser and browser.is_connected()  # started once, reused


def test_no_request_of_a_rendered_page_reaches_an_address_the_policy_refuses(read, web, elsewhere):
    page = read([f"{web.url}/reaching?target={elsewhere.url}"], browser_fetch="always")[0]
    assert page.ok and RENDERED_TEXT in page.html  # the page is read; what it reached for is not
    refused = int(re.search(r"(\d+) refused", page.reason).group(1))
    assert refused >= 3, page.reason  # the image, the fetch and the script
    redirected = read([f"{web.url}/redirect-to?url={elsewhere.url}/"], browser_fetch="always")[0]
    assert redirected.status == "blocked" and "127.0.0.2" in redirected.reason
    direct = read([elsewhere.url + "/"], browser_fetch="always")[0]
    assert direct.status == "blocked"
    time.sleep(0.5)  # anything still in flight
    assert elsewhere.hits == []


def test_dialogs_and_pop_ups_are_refused_and_the_page_is_still_read(read, web):
    page = read([web.url + "/dialogs"], browser_fetch="always")[0]
    assert page.ok and RENDERED_TEXT in page.html
    assert any(r.get("refused") == "pop-ups are not opened" for r in read.requests), read.requests


class UdpListener:
    def __init__(self, host: str):
        import socket

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((host, 0))
        self.socket.settimeout(0.2)
        self.address = f"{host}:{self.socket.getsockname()[1]}"

    def packets(self, seconds: float) -> int:
        count, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.socket.recv(4096)
                count += 1
            except OSError:
                pass
        return count


def test_a_pages_script_reads_no_other_server_and_webrtc_sends_nothing(read, web, elsewhere):
    udp = UdpListener("127.0.0.2")
    # Even a server the user allowed (127.0.0.2 here) is not readable by another site's script.
    page = read([f"{web.url}/prying?target={udp.address}"], browser_fetch="always",
                allowed_hosts=[f"{web.host}:{web.port}", elsewhere.url.split("//")[1]])[0]
    assert page.ok and RENDERED_TEXT in page.html
    assert "private" not in page.html  # neither the direct read nor the one through a redirect
    assert udp.packets(1.5) == 0  # no STUN packet: WebRTC reaches nothing
    pried = read([f"{web.url}/prying?target={elsewhere.url.split('//')[1]}"], browser_fetch="always",
                 allowed_hosts=[f"{web.host}:{web.port}", elsewhere.url.split("//")[1]])[0]
    assert pried.ok and "private" not in pried.html


def test_in_auto_mode_a_failing_browser_leaves_the_plain_page(read, web, monkeypatch):
    from localsearch_plugins.chromium import BROWSER

    async def broken(url, config):
        raise RuntimeError("the page is navigating")

    monkeypatch.setattr(BROWSER, "read", broken)
    page = read([web.url + "/app"])[0]
    assert page.ok and "Loading..." in page.html and "the browser failed" in page.reason


def test_a_page_whose_script_never_ends_times_out_and_the_others_are_read(read, web):
    started = time.monotonic()
    busy, article = read([web.url + "/busy", web.url + "/articles/harrowmere-lighthouse"], browser_fetch="always",
                         fetch_timeout=4.0)
    assert busy.status == "timeout" and "browser" in busy.reason
    assert article.ok
    assert time.monotonic() - started < 8


def test_a_page_over_the_size_cap_is_too_large(read, web):
    page = read([web.url + "/articles/harrowmere-lighthouse"], browser_fetch="always", max_page_bytes=2000)[0]
    assert page.status == "too large" and "cap" in page.reason


def test_a_missing_browser_is_a_reason_on_the_page_never_a_failed_question(read, web, tmp_path):
    missing = str(tmp_path / "no-such-chrome")
    always = read([web.url + "/app"], browser_fetch="always", browser_path=missing)[0]
    assert always.status == "error" and "browser_path" in always.reason
    auto = read([web.url + "/app"], browser_fetch="auto", browser_path=missing)[0]
    assert auto.ok and "looks built by script" in auto.reason and "browser_path" in auto.reason


def test_a_browser_that_will_not_start_is_not_started_again_for_every_page(read, web):
    from localsearch_plugins.chromium import BROWSER

    first = read([web.url + "/app"], browser_fetch="always", browser_path="/bin/true")[0]
    assert first.status == "error" and "did not start" in first.reason
    assert BROWSER._playwright is None  # its driver was stopped, not left running
    started = time.monotonic()
    again = read([web.url + "/app"], browser_fetch="always", browser_path="/bin/true")[0]
    assert again.reason == first.reason and time.monotonic() - started < 1.0
    assert read([web.url + "/app"], browser_fetch="always")[0].ok  # the usual browser still starts


def test_a_question_is_answered_from_a_page_only_its_script_writes(make_pipeline, web):
    from localsearch.events import fold_events

    pipeline = make_pipeline(searxng_url=web.url + "/with-app")
    try:
        answer = fold_events(pipeline.ask("When was the Orrin signal tower rebuilt?"))
    finally:
        pipeline.close()
    assert "1962" in answer["answer"], answer["answer"]
    assert any(c["url"] == web.url + "/app" for c in answer["citations"])
