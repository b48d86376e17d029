"""Search that does not give up: each engine's outcome is named (ok, empty, rate-limited,
blocked, error, timeout), and when the engines give nothing the fallback engines are tried in
order. The Brave Search API engine, against a local service of its shape."""

from __future__ import annotations

import json

import pytest

from localsearch.events import fold_events

QUESTION = "When was the Harrowmere lighthouse first lit?"
SECRET = "test-key"


def outcomes(pipeline, question=QUESTION):
    events = list(pipeline.ask(question))
    report = next(e.data["engines"] for e in events if e.type == "search_results")
    return report, fold_events(iter(events)), events


@pytest.mark.parametrize("service, status", [
    ("/ratelimited", "rate-limited"),
    ("/captcha", "blocked"),
    ("/nothing", "empty"),
    ("/down", "error"),
])
def test_a_failing_engine_is_named_and_the_fallback_answers(make_pipeline, web, service, status):
    pipeline = make_pipeline(searxng_url=web.url + service, fallback_engines=["brave"],
                             brave_url=web.url + "/brave/res/v1/web/search", brave_api_key=SECRET)
    try:
        report, answer, _ = outcomes(pipeline)
    finally:
        pipeline.close()
    assert report["searxng"]["status"] == status, report
    assert report["brave"]["status"] == "ok" and report["brave"]["fallback"] is True and report["brave"]["count"]
    assert "1887" in answer["answer"] and answer["citations"]


def test_the_fallback_is_not_asked_while_the_engines_give_results(make_pipeline, web):
    pipeline = make_pipeline(fallback_engines=["brave"], brave_url=web.url + "/brave/res/v1/web/search",
                             brave_api_key=SECRET)
    web.clear_log()
    try:
        report, _, _ = outcomes(pipeline)
    finally:
        pipeline.close()
    assert report["searxng"]["status"] == "ok" and "brave" not in report
    assert web.count("/brave/") == 0


def test_fallbacks_go_in_order_until_one_gives_results(make_pipeline, web):
    # "searxng" is rate-limited; the first fallback, the local index, is empty; then "brave" answers.
    pipeline = make_pipeline(searxng_url=web.url + "/ratelimited", fallback_engines=["local", "brave"],
                             brave_url=web.url + "/brave/res/v1/web/search", brave_api_key=SECRET)
    try:
        report, answer, _ = outcomes(pipeline)
    finally:
        pipeline.close()
    assert list(report) == ["searxng", "local", "brave"]
    assert report["local"]["status"] == "empty" and report["brave"]["status"] == "ok"
    assert "1887" in answer["answer"]


def test_when_every_engine_fails_the_question_says_so_and_names_each(make_pipeline, web):
    pipeline = make_pipeline(searxng_url=web.url + "/captcha", fallback_engines=["brave"],
                             brave_url=web.url + "/brave/res/v1/web/search", brave_api_key="wrong-key")
    try:
        report, answer, events = outcomes(pipeline)
    finally:
        pipeline.close()
    assert report["searxng"]["status"] == "blocked" and report["brave"]["status"] == "blocked"
    assert "no search results" in answer["fatal"]
    warnings = [e.data["message"] for e in events if e.type == "warning"]
    assert any("brave (blocked)" in w and "brave_api_key" in w for w in warnings), warnings
    assert "wrong-key" not in json.dumps([e.data for e in events])  # the key never shows


def test_doctor_reports_each_engines_outcome(home, web):
    from localsearch.config import Config
    from localsearch.doctor import diagnose

    config = Config.load({"engines": ["searxng"], "searxng_url": web.url + "/ratelimited",
                          "fallback_engines": ["brave"], "brave_url": web.url + "/brave/res/v1/web/search",
                          "brave_api_key": SECRET})
    check = next(c for c in diagnose(config) if c.name == "search engines")
    assert "searxng: rate-limited" in check.detail and "brave (fallback): empty" in check.detail
    assert check.ok is True  # one answers (the probe's query finds nothing on the test web)
    broken = next(c for c in diagnose(config.replace(brave_api_key="nope")) if c.name == "search engines")
    assert broken.ok is False and "brave (fallback): blocked" in broken.detail and "nope" not in broken.detail


def test_an_api_key_is_never_shown_by_config_or_in_its_errors(home, monkeypatch):
    import subprocess
    import sys

    from localsearch.config import Config
    from localsearch.errors import ConfigError

    monkeypatch.setenv("LOCALSEARCH_BRAVE_API_KEY", "sk-very-secret")
    shown = subprocess.run([sys.executable, "-m", "localsearch", "config", "--json"], capture_output=True, text=True)
    settings = {s["name"]: s["value"] for s in json.loads(shown.stdout)["settings"]}
    assert settings["brave_api_key"] == "(set)" and "sk-very-secret" not in shown.stdout + shown.stderr
    with pytest.raises(ConfigError) as refused:
        Config.load().replace(brave_api_key=12345)
    assert "12345" not in str(refused.value) and "hidden" in str(refused.value)
