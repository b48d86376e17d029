"""The browser's options, kept by the host: read and changed with a `preferences` request,
checked, kept in the data directory, and applied to the browser's questions only."""

from __future__ import annotations

import json

import pytest

from localsearch.config import Config
from localsearch.session import Session

from helpers import Inbox


@pytest.fixture
def session(home, web):
    return Session(Config.load({"engines": ["searxng"], "searxng_url": web.url, "llm": False,
                                "search_timeout": 5.0, "fetch_timeout": 3.0}))


def ask(session, request, client="browser") -> list[dict]:
    inbox = Inbox()
    session.handle(request, client, inbox.deliver)
    inbox.end_of(request["id"])
    return inbox.of(request["id"])


def test_the_options_page_reads_changes_and_forgets_preferences_kept_in_the_data_directory(session, home, web):
    first = ask(session, {"id": "p1", "type": "preferences"})
    read = first[0]["data"]
    assert first[-1]["type"] == "done" and read["saved"] == {}
    assert read["values"]["engines"] == ["searxng"] and read["values"]["max_pages"] == 5
    assert {"searxng", "duckduckgo", "local"} <= set(read["engines"]) and read["help"]["llm"]

    changed = ask(session, {"id": "p2", "type": "preferences", "set": {"max_pages": 2, "history": "no"}})[0]["data"]
    assert changed["saved"] == {"max_pages": 2, "history": False} and changed["values"]["max_pages"] == 2
    path = home / "data" / "preferences.json"
    assert json.loads(path.read_text()) == {"max_pages": 2, "history": False}
    assert path.stat().st_mode & 0o777 == 0o600 and (home / "data").stat().st_mode & 0o777 == 0o700
    assert [p.name for p in (home / "data").iterdir() if p.name.startswith(".preferences")] == []

    # A new session (the server started again) reads them; null forgets one.
    again = Session(session.config)
    assert ask(again, {"id": "p3", "type": "preferences", "set": {"history": None}})[0]["data"]["saved"] == \
        {"max_pages": 2}


@pytest.mark.parametrize("change, problem", [
    ({"data_dir": "/tmp/elsewhere"}, "cannot be set from the browser's options"),
    ({"allowed_hosts": ["10.0.0.0/8"]}, "cannot be set from the browser's options"),
    ({"max_pages": "many"}, "max_pages"),
    ({"max_pages": 0}, "max_pages"),
    ({"searxng_url": "file:///etc/passwd"}, "http or https"),
    ({"max_pages": 500}, "at most 20 from the browser"),  # the limits of a browser request hold
    ({"engines": ["x" * 5000] * 2000}, "too long"),
    ({"searxng_url": "http://169.254.169.254/"}, "allowed_hosts"),  # the URL policy holds too
    ({"searxng_url": "http://10.0.0.8:8888/"}, "allowed_hosts"),
    ({"history": "maybe"}, "history"),
])
def test_a_preference_that_cannot_be_kept_is_refused_and_nothing_is_written(session, home, change, problem):
    ask(session, {"id": "ok", "type": "preferences", "set": {"max_pages": 3}})
    refused = ask(session, {"id": "bad", "type": "preferences", "set": change})
    assert [m["type"] for m in refused] == ["error"] and problem in refused[0]["data"]["message"]
    assert json.loads((home / "data" / "preferences.json").read_text()) == {"max_pages": 3}


def test_preferences_apply_to_the_browsers_questions_and_not_to_the_command_line(session, home):
    ask(session, {"id": "p", "type": "preferences", "set": {"max_pages": 1, "history": False}})
    question = {"id": "q", "type": "ask", "question": "When was the Harrowmere lighthouse first lit?"}
    from_browser = ask(session, question)
    fetched = [m for m in from_browser if m["type"] == "page"]
    answer = next(m for m in from_browser if m["type"] == "answer")["data"]
    assert len(fetched) == 1 and "conversation_id" not in answer  # one page read, nothing kept

    from_cli = ask(session, {**question, "id": "c"}, client="cli")
    assert len([m for m in from_cli if m["type"] == "page"]) > 1
    assert "conversation_id" in next(m for m in from_cli if m["type"] == "answer")["data"]
    listed = ask(session, {"id": "h", "type": "history"})[0]["data"]
    assert listed["enabled"] is False and listed["total"] == 1  # the browser's view: history off

    # A request's own settings still win over the saved ones.
    wider = ask(session, {**question, "id": "w", "settings": {"max_pages": 3}})
    assert len([m for m in wider if m["type"] == "page"]) > 1


def test_a_searxng_the_user_allowed_or_configured_may_be_chosen(home, web):
    config = Config.load({"searxng_url": "http://127.0.0.1:9/"})  # the config's own, though local
    from localsearch import preferences

    assert preferences.save(config, {"searxng_url": "http://127.0.0.1:9/"}) == {"searxng_url": "http://127.0.0.1:9/"}
    assert preferences.save(config, {"searxng_url": web.url + "/down"})["searxng_url"] == web.url + "/down"
    with pytest.raises(preferences.PreferencesError, match="allowed_hosts"):
        preferences.save(config, {"searxng_url": "http://127.0.0.1:8888/"})  # not allowed, not configured


def test_saves_at_once_from_many_threads_lose_nothing_and_never_fail(home):
    import threading

    from localsearch import preferences

    config = Config.load()
    problems = []

    def change(name, value):
        try:
            for _ in range(20):
                preferences.save(config, {name: value})
        except Exception as error:  # noqa: BLE001 - any failure is the finding
            problems.append(error)

    threads = [threading.Thread(target=change, args=args) for args in
               [("max_pages", 3), ("llm", False), ("history", False), ("engines", ["local"])]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    assert preferences.load(config) == {"max_pages": 3, "llm": False, "history": False, "engines": ["local"]}


def test_a_preferences_file_broken_by_hand_is_named_and_does_not_stop_questions(session, home):
    path = home / "data" / "preferences.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    refused = ask(session, {"id": "p", "type": "preferences"})
    assert refused[0]["type"] == "error" and "preferences.json" in refused[0]["data"]["message"]
    answered = ask(session, {"id": "q", "type": "ask", "question": "When was the Harrowmere lighthouse first lit?"})
    assert answered[-1]["type"] == "done"
    # Saving from the options page replaces the broken file.
    assert ask(session, {"id": "p2", "type": "preferences", "set": {"llm": False}})[0]["data"]["saved"] == {"llm": False}
    assert json.loads(path.read_text()) == {"llm": False}
    # Values the settings cannot take, and names that are not preferences, are left out.
    path.write_text(json.dumps({"max_pages": "lots", "engines": ["searxng"], "port": 1}))
    assert ask(session, {"id": "p3", "type": "preferences"})[0]["data"]["saved"] == {"engines": ["searxng"]}


def test_doctor_names_the_browsers_preferences_and_a_broken_file(home):
    from localsearch.doctor import diagnose

    config = Config.load()
    check = next(c for c in diagnose(config, offline=True) if c.name == "browser preferences")
    assert check.ok and "none saved" in check.detail
    path = home / "data" / "preferences.json"
    path.write_text('{"max_pages": 2}')
    check = next(c for c in diagnose(config, offline=True) if c.name == "browser preferences")
    assert check.ok and "max_pages = 2" in check.detail
    path.write_text("{broken")
    check = next(c for c in diagnose(config, offline=True) if c.name == "browser preferences")
    assert check.ok is False and str(path) in check.fix
