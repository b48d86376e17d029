"""Every request a question sends out is listed (``requests`` in the JSON answer,
``ask --show-requests``), and ``--offline`` sends none: a Python audit hook in the command's own
process counts every connection and name lookup it makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from localsearch.events import fold_events

QUESTION = "When was the Harrowmere lighthouse first lit?"

AUDIT = textwrap.dedent("""
    import atexit, json, os, socket, sys
    seen = {"connect": [], "getaddrinfo": []}
    def hook(event, args):
        if event == "socket.connect" and args[0].family in (socket.AF_INET, socket.AF_INET6):
            seen["connect"].append(str(args[1]))
        elif event == "socket.getaddrinfo":
            seen["getaddrinfo"].append(str(args[0]))
    sys.addaudithook(hook)
    atexit.register(lambda: open(os.environ["AUDIT_OUT"], "w").write(json.dumps(seen)))
""")


def test_a_question_lists_its_searches_and_pages_and_nothing_local(make_pipeline, web):
    pipeline = make_pipeline(engines=["searxng", "local"], max_pages=3)
    try:
        answer = fold_events(pipeline.ask(QUESTION))
    finally:
        pipeline.close()
    requests = answer["requests"]
    searches = [r for r in requests if r["kind"] == "search"]
    assert searches and all(r["engine"] == "searxng" and r["url"] == web.url + "/search" for r in searches)
    assert QUESTION in [r["query"] for r in searches]
    pages = {r["url"] for r in requests if r["kind"] == "page"}
    assert {s["url"] for s in answer["sources"] if s["status"] == "ok"} <= pages
    assert all(r["url"].startswith(web.url) for r in requests)  # nothing else, and the index is not a request
    assert [r["at"] for r in requests] == sorted(r["at"] for r in requests)


def test_a_rendered_page_lists_what_it_loaded_and_what_was_refused(make_pipeline, web):
    pipeline = make_pipeline(searxng_url=web.url + "/with-app", browser_fetch="always", max_pages=1)
    try:
        answer = fold_events(pipeline.ask("When was the Orrin signal tower rebuilt?"))
    finally:
        pipeline.close()
    assert {"url": web.url + "/app", "kind": "page"}.items() <= next(
        r for r in answer["requests"] if r["kind"] == "page").items()
    reaching = make_pipeline(searxng_url=web.url, browser_fetch="always")
    try:
        from localsearch.documents import fetch
        from localsearch.events import Run
        from localsearch.outgoing import recording
        from localsearch.urlpolicy import UrlPolicy

        run = Run(reaching.config)
        with recording(run.requests):
            fetch([f"{web.url}/reaching?target=http://10.9.8.7"], UrlPolicy.from_config(run.config),
                  reaching.workers, run)
    finally:
        reaching.close()
    listed = run.requests.entries()
    refused = [r for r in listed if r.get("refused")]
    assert any(r["kind"] == "subresource" and r["url"].startswith("http://10.9.8.7/") for r in refused), listed
    assert all(not r["url"].startswith("http://10.9.8.7") for r in listed if not r.get("refused"))


@pytest.fixture
def audited(home, tmp_path):
    """Run ``localsearch`` as a user would, with every connection and lookup it makes counted."""
    folder = tmp_path / "audit"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(AUDIT)

    def run(*arguments):
        out = tmp_path / "seen.json"
        environment = {**os.environ, "PYTHONPATH": str(folder), "AUDIT_OUT": str(out), "LOCALSEARCH_USE_SERVER": "0"}
        done = subprocess.run([sys.executable, "-m", "localsearch", *arguments], env=environment,
                              capture_output=True, text=True, timeout=600)
        return done, json.loads(out.read_text())

    return run


@pytest.mark.slow
def test_offline_sends_nothing_and_the_count_would_see_it_if_it_did(audited, web, tmp_path):
    page = tmp_path / "lighthouse.html"
    page.write_text("<html><head><title>Harrowmere</title></head><body><article><h1>Harrowmere lighthouse</h1>"
                    "<p>The Harrowmere lighthouse was first lit on 9 October 1887, after two years of building "
                    "on the rocks of the point, and it has warned ships off the reef ever since.</p>"
                    "</article></body></html>")
    indexed, _ = audited("index", str(page))
    assert indexed.returncode == 0, indexed.stderr

    done, seen = audited("ask", "--offline", "--no-llm", "--json", QUESTION)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert "1887" in answer["answer"] and answer["requests"] == []
    assert seen == {"connect": [], "getaddrinfo": []}, seen

    # The same count on a question that does go out: it sees the search and the pages.
    done, seen = audited("ask", "--no-llm", "--json", "--engine", "searxng", "--searxng-url", web.url, QUESTION)
    assert done.returncode == 0, done.stderr
    assert any(f"'127.0.0.1', {web.port}" in address for address in seen["connect"])
    assert json.loads(done.stdout)["requests"]


def test_show_requests_lists_them_after_the_answer(home, web):
    done = subprocess.run([sys.executable, "-m", "localsearch", "ask", "--no-llm", "--show-requests",
                           "--engine", "searxng", "--searxng-url", web.url, "--max-pages", "2", QUESTION],
                          env={**os.environ, "LOCALSEARCH_USE_SERVER": "0"}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    listed = done.stdout[done.stdout.index("Requests sent ("):]
    assert f"search      searxng: {QUESTION!r} {web.url}/search" in listed
    assert listed.count(" page ") >= 2
