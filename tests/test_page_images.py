"""Text that lives only in a page's images is read (OCR), retrieved and cited with the image it
came from (issue 14); bad images cost only themselves, within the question's image budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from localsearch.events import fold_events
from localsearch.types import Page

from testweb.pictures import ANSWERS, bomb_header

QUESTION, ANSWER = next(iter(ANSWERS.items()))


@pytest.fixture
def pictures(make_pipeline, web):
    """A pipeline searching the test web's pages of pictures."""
    def make(**settings):
        return make_pipeline(searxng_url=web.url + "/pictures", **settings)
    return make


def pages_of(events: list) -> dict:
    return {e.data["url"]: e.data for e in events if e.type == "page"}


def test_the_extractor_lists_the_images_of_the_main_content():
    from localsearch.config import Config
    from localsearch_plugins.html_extract import extract_document

    html = """<html><head><base href="https://cdn.example/assets/"><title>Charts</title></head><body>
    <nav><img src="/logo.png" alt="Logo"></nav>
    <main><h1>Charts</h1><p>Our figures for the year, drawn as charts, follow below for every region.</p>
    <h2>Revenue</h2><img src="revenue.png" alt="Revenue by year" width="640" height="400">
    <picture><source srcset="big.webp"><img src="chart-small.png" srcset="chart-1x.png 1x, chart-2x.png 2x"></picture>
    <img data-src="lazy.png" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
    <img src="hidden.png" style="display: none"><img src="revenue.png" alt="again">
    </main></body></html>"""
    document = extract_document(Page("https://example.org/charts", "ok", html=html), Config.load())
    found = [(i.url, i.alt, i.section, i.width, i.height) for i in document.images]
    assert found == [
        ("https://cdn.example/assets/revenue.png", "Revenue by year", "Revenue", 640, 400),
        ("https://cdn.example/assets/chart-small.png", "", "Revenue", 0, 0),
        ("https://cdn.example/assets/lazy.png", "", "Revenue", 0, 0),
    ], "the navigation's logo, the hidden image and a repeated one are not listed; a lazy loader's src is"


def test_an_answer_that_is_only_in_an_image_is_found_and_cites_the_image(pictures, web):
    without = list(pictures().ask(QUESTION))
    page_url = web.url + "/pictures/ferry-timetable"
    assert pages_of(without)[page_url]["status"] == "no content", "the page's own text is too short to count"
    assert ANSWER not in fold_events(without)["answer"]

    events = list(pictures(ocr_images=True).ask(QUESTION))
    answer, page = fold_events(events), pages_of(events)[page_url]
    assert page["status"] == "ok"
    images = {i["url"].rsplit("/", 1)[-1]: i for i in page["images"]}
    assert images["timetable.png"]["status"] == "ok" and images["timetable.png"]["lines"] == 3
    assert images["icon.png"] == {"url": web.url + "/pictures/img/icon.png", "status": "skipped",
                                  "reason": "smaller than 100 px", "lines": 0, "seconds": 0.0}
    assert ANSWER in answer["answer"]
    cited = [c for c in answer["citations"] if ANSWER in c["quote"]]
    assert cited and cited[0]["url"] == page_url and cited[0]["supported"]
    assert cited[0]["image"] == web.url + "/pictures/img/timetable.png"
    assert cited[0]["section"].endswith("Timetable › Image: Winter timetable")
    assert any(s["url"] == page_url for s in answer["sources"])
    assert {"kind": "image", "url": web.url + "/pictures/img/timetable.png"}.items() <= \
        next(r for r in answer["requests"] if r["kind"] == "image").items()


def test_bad_images_each_get_a_reason_and_the_rest_of_the_page_is_read(pictures, web):
    pipeline = pictures(ocr_images=True, images_per_question=9)
    started = time.perf_counter()
    events = list(pipeline.ask("When does the harbour museum open?"))
    seconds = time.perf_counter() - started
    page = pages_of(events)[web.url + "/pictures/museum-notice"]
    assert page["status"] == "ok"
    said = {i["url"].rsplit("/", 1)[-1]: (i["status"], i.get("reason", "")) for i in page["images"]}
    assert said["corrupt.png"][0] == "unreadable" and "not an image" in said["corrupt.png"][1]
    assert said["bomb.png"] == ("unreadable", said["bomb.png"][1]) and "pixel bound" in said["bomb.png"][1]
    assert said["drawing-as-png.png"] == ("unreadable", "the image is an SVG drawing, not a picture: its text is "
                                                       "read from the page itself")
    assert said["html-as-png.png"][0] == "unreadable" and "<!DOCTYPE html>" in said["html-as-png.png"][1]
    moved = said["redirect-to?url=http%3A%2F%2F10.0.0.1%2Fnotice.png"]
    assert moved[0] == "blocked" and "10.0.0.1 is a private address" in moved[1]
    assert said["opening.gif"] == ("ok", ""), "an animation's first frame is read"
    answer = fold_events(events)
    assert "opens at nine on Saturdays" in answer["answer"], "the first frame's sentence answers"
    assert "second frame" not in json.dumps(answer)
    assert pipeline.indexer.drain(30)
    stored = pipeline.store.query(pipeline.embed(["maritime records logbooks"], "query")[0], 3)
    assert any("maritime records" in p.text for p in stored), "the page's own text was stored"
    assert any(p.image.endswith("/opening.gif") for p in pipeline.store.query(
        pipeline.embed(["museum opening hours"], "query")[0], 5)), "the image's passage keeps its image"
    assert seconds < 30, f"six bad images and one good one took {seconds:.1f} s"


def test_the_question_reads_at_most_its_budget_of_images(pictures, web):
    events = list(pictures(ocr_images=True, images_per_question=2).ask("Orrin signal tower slides"))
    images = pages_of(events)[web.url + "/pictures/slides"]["images"]
    assert [i["status"] for i in images].count("ok") == 2
    assert [i["reason"] for i in images if i["status"] == "skipped"] == ["over the question's 2 images"] * 3

    events = list(pictures(ocr_images=True, image_seconds=0.0, freshness_hours=0.0).ask("Orrin signal tower slides"))
    images = pages_of(events)[web.url + "/pictures/slides"]["images"]
    assert {(i["status"], i["reason"]) for i in images} == {("skipped", "over the question's 0 s for images")}


def test_images_of_a_page_the_browser_sends_are_read_even_inline(make_pipeline):
    import base64

    from testweb.pictures import DRAWN, _drawn

    inline = base64.b64encode(_drawn(tuple(DRAWN["timetable.png"]))).decode()
    page = Page("https://ferries.example/timetable", "ok", title="Ferries",
                html=f'<html><body><main><h1>Ferries</h1><img src="data:image/png;base64,{inline}" alt="Timetable">'
                     "</main></body></html>")
    answer = fold_events(make_pipeline().ask(QUESTION, page=page, search_web=False))
    assert ANSWER in answer["answer"], "ocr_page_images is on by default for the browser's page"
    cited = next(c for c in answer["citations"] if ANSWER in c["quote"])
    assert cited["url"] == "https://ferries.example/timetable" and cited["image"] == "data:image/png"

    answer = fold_events(make_pipeline(ocr_page_images=False).ask(QUESTION, page=page, search_web=False))
    assert ANSWER not in answer["answer"]


def run_cli(*arguments, env_extra=None, timeout=300):
    env = {**os.environ, "LOCALSEARCH_USE_SERVER": "false", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "localsearch", *arguments], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_image_ocr_reads_a_url_under_the_url_policy(home, web, tmp_path):
    done = run_cli("image", "ocr", web.url + "/pictures/img/timetable.png", "--json")
    assert done.returncode == 0, done.stderr
    lines = [line["text"] for line in json.loads(done.stdout)["lines"]]
    assert any(ANSWER in line for line in lines)

    refused = run_cli("image", "ocr", web.url + "/redirect-to?url=http%3A%2F%2F10.0.0.1%2Fx.png")
    assert refused.returncode == 1 and "blocked" in refused.stderr and "10.0.0.1 is a private address" in refused.stderr
    refused = run_cli("image", "ocr", web.url + "/articles/harrowmere-lighthouse")
    assert refused.returncode == 1 and "not an image" in refused.stderr and "text/html" in refused.stderr
    started = time.perf_counter()
    (tmp_path / "bomb.png").write_bytes(bomb_header(20_000, 20_000))
    refused = run_cli("image", "ocr", str(tmp_path / "bomb.png"))
    assert refused.returncode == 1 and "pixel bound" in refused.stderr
    assert time.perf_counter() - started < 15  # a process start included; the refusal itself is instant
    missing = run_cli("image", "ocr", str(tmp_path / "nothing.png"))
    assert missing.returncode == 1 and "no such file" in missing.stderr


@pytest.mark.slow
def test_localsearch_ask_with_ocr_images_answers_from_an_image_and_cites_it(home, web):
    """The command a user runs, with the real model: its answer stands only when a source
    supports it, else the extractive one is final; either way the image is cited."""
    done = run_cli("ask", QUESTION, "--json", env_extra={
        "LOCALSEARCH_ENGINES": "searxng", "LOCALSEARCH_SEARXNG_URL": web.url + "/pictures",
        "LOCALSEARCH_OCR_IMAGES": "true"}, timeout=600)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert ANSWER in answer["answer"]
    assert any(c["image"] == web.url + "/pictures/img/timetable.png" and c["supported"] for c in answer["citations"])
