"""The history: conversations kept in SQLite, shared by every client, continued by id, listed,
reopened and deleted through the protocol and the CLI."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sqlite3
import stat
import threading
import time

import pytest
from click.testing import CliRunner

from localsearch.config import Config
from localsearch.history import HISTORY_FILE, History, HistoryError, NoSuchConversation
from localsearch.session import Session

QUESTION = "When was the Harrowmere lighthouse first lit?"


def answer_data(question: str, text: str = "It was first lit in 1887 [1].", **extra) -> dict:
    """An ``answer`` message's data as the pipeline sends it."""
    return {"question": question, "answer": text, "extractive": False, "model": "m.gguf",
            "citations": [{"n": 1, "url": "https://a.example/", "title": "A", "quote": "lit in 1887",
                           "supported": True, "sentence": text, "reason": "", "section": ""}],
            "sources": [{"n": 1, "url": "https://a.example/", "title": "A", "status": "ok", "reason": ""}],
            "unsupported": [], "usage": {}, "timings": {"answer": 0.5},
            "turn": {"question": question, "answer": text, "messages": [{"role": "user", "content": question}],
                     "reply": text}, **extra}


def test_a_conversation_keeps_its_turns_in_order_with_what_a_follow_up_needs(tmp_path):
    history = History(tmp_path)
    id, position = history.add_turn(None, answer_data(QUESTION), "cli")
    assert position == 1 and len(id) == 16
    assert history.add_turn(id, answer_data("Who built it?", "Ann Hale [1]."), "cli") == (id, 2)
    turns = history.turns(id)
    assert [t["question"] for t in turns] == [QUESTION, "Who built it?"]
    assert turns[1] == {"question": "Who built it?", "answer": "Ann Hale [1].",
                        "messages": [{"role": "user", "content": "Who built it?"}], "reply": "Ann Hale [1]."}
    kept = history.conversation(id)
    assert kept["title"] == QUESTION and kept["client"] == "cli" and kept["turns"][1]["position"] == 2
    answer = kept["turns"][0]["answer"]
    assert answer["citations"][0]["quote"] == "lit in 1887" and answer["sources"][0]["url"] == "https://a.example/"
    assert "turn" not in answer  # the prompt is kept once, for the follow-up, not in the document


def test_a_follow_up_gets_only_the_last_turns(tmp_path):
    history = History(tmp_path)
    id, _ = history.add_turn(None, answer_data("q1"), "cli")
    for n in range(2, 8):
        history.add_turn(id, answer_data(f"q{n}"), "cli")
    assert [t["question"] for t in history.turns(id)] == ["q4", "q5", "q6", "q7"]
    assert len(history.conversation(id)["turns"]) == 7


def test_listing_is_newest_first_with_paging_search_and_the_last_per_client(tmp_path):
    history = History(tmp_path)
    first, _ = history.add_turn(None, answer_data("Alpha question"), "cli")
    second, _ = history.add_turn(None, answer_data("Beta question", "Beta answer about zebras."), "browser")
    history.add_turn(first, answer_data("Gamma follow-up"), "cli")  # continuing makes it the newest
    listed, total = history.conversations()
    assert [c["id"] for c in listed] == [first, second] and total == 2
    assert listed[0]["turns"] == 2 and listed[0]["title"] == "Alpha question"
    assert [c["id"] for c in history.conversations(limit=1, offset=1)[0]] == [second]
    assert [c["id"] for c in history.conversations(query="ZEBRAS")[0]] == [second]  # answers are searched too
    assert history.conversations(query="gamma") == ([history.conversations()[0][0]], 1)
    assert history.last() == first and history.last("browser") == second and history.last("nobody") is None
    history.add_turn(second, answer_data("Delta, asked on the command line"), "cli")
    assert history.last("cli") == second  # the conversation of the CLI's last question, whoever began it
    assert history.resolve(second[:6]) == second
    for missing in ("zz", "", "  ", "\udcff"):  # an unset $ID must not name every conversation
        with pytest.raises(NoSuchConversation):
            history.resolve(missing)


def test_deleting_removes_the_text_from_the_file_itself(tmp_path):
    history = History(tmp_path)
    secret = "What is the dosage of Xylotrexinol for my condition?"
    id, _ = history.add_turn(None, answer_data(secret), "cli")
    kept, _ = history.add_turn(None, answer_data("Something else"), "cli")
    assert history.delete([id, "no-such-id"]) == 1
    with pytest.raises(NoSuchConversation):
        history.turns(id)
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob(HISTORY_FILE + "*"))
    assert b"Xylotrexinol" not in on_disk  # overwritten (secure_delete, log checkpointed), not only unlinked
    assert history.delete(None) == 1 and history.conversations() == ([], 0)


def test_an_answer_to_a_question_asked_before_everything_was_deleted_is_not_kept(tmp_path):
    history = History(tmp_path)
    asked = time.time()
    history.add_turn(None, answer_data("An earlier question"), "cli")
    history.delete(None)
    with pytest.raises(NoSuchConversation, match="cleared"):
        history.add_turn(None, answer_data("Asked before the delete, answered after"), "browser", asked=asked)
    assert history.conversations() == ([], 0)
    history.add_turn(None, answer_data("Asked after"), "browser", asked=time.time())
    assert history.conversations()[1] == 1


def test_the_file_is_born_private_whatever_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        History(tmp_path).add_turn(None, answer_data(QUESTION), "cli")
    finally:
        os.umask(previous)
    files = list(tmp_path.glob(HISTORY_FILE + "*"))
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files), files


def test_a_follow_up_to_a_deleted_conversation_does_not_bring_it_back(tmp_path):
    history = History(tmp_path)
    id, _ = history.add_turn(None, answer_data(QUESTION), "browser")
    history.delete([id])
    with pytest.raises(NoSuchConversation, match="deleted"):
        history.add_turn(id, answer_data("Who built it?"), "browser")
    assert history.conversations() == ([], 0)


def test_values_json_cannot_carry_are_kept_readable(tmp_path):
    history = History(tmp_path)
    data = answer_data("A \ud800 lone surrogate?", "An answer \udfff from a page the browser sent [1].")
    data["citations"][0]["score"] = math.nan
    data["citations"][0]["quote"] = "a quote \ud83d"
    id, _ = history.add_turn(None, data, "browser")
    kept = history.conversation(id)
    assert kept["turns"][0]["answer"]["citations"][0]["score"] is None
    assert kept["turns"][0]["answer"]["citations"][0]["quote"] == "a quote \ufffd"
    json.dumps(kept, ensure_ascii=False).encode("utf-8")  # printable: no lone surrogate came back
    assert history.conversations(query="\ud83d")[1] == 1  # a search for one is no crash either
    raw = sqlite3.connect(tmp_path / HISTORY_FILE).execute("SELECT document FROM turns").fetchone()[0]
    json.loads(raw, parse_constant=lambda name: pytest.fail(f"{name} in the stored JSON"))


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    (tmp_path / HISTORY_FILE).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="cannot"):
        History(tmp_path).conversations()


def _add_turns(data_dir: str, id: str, start: int, count: int, errors: list | None = None) -> None:
    history = History(data_dir)
    for n in range(start, start + count):
        try:
            history.add_turn(id, answer_data(f"q{n}"), "cli")
        except Exception as error:  # a thread's failure must fail the test, not only warn
            if errors is None:
                raise
            errors.append(repr(error))


@pytest.mark.parametrize("round", range(4))  # a lost lock shows in some rounds only
def test_threads_and_processes_adding_turns_at_once_lose_none(tmp_path, round):
    history = History(tmp_path)
    id, _ = history.add_turn(None, answer_data("q0"), "cli")
    context = multiprocessing.get_context("spawn")
    errors: list[str] = []
    processes = [context.Process(target=_add_turns, args=(str(tmp_path), id, 100 * (p + 1), 15)) for p in range(2)]
    threads = [threading.Thread(target=_add_turns, args=(str(tmp_path), id, 1000 * (t + 1), 15, errors))
               for t in range(3)]
    for worker in processes + threads:
        worker.start()
    for worker in processes + threads:
        worker.join(120)
    assert all(p.exitcode == 0 for p in processes) and errors == []
    turns = history.conversation(id)["turns"]
    assert len(turns) == 1 + 5 * 15
    assert [t["position"] for t in turns] == list(range(1, 77))
    assert len({t["question"] for t in turns}) == 76
    assert sqlite3.connect(tmp_path / HISTORY_FILE).execute("PRAGMA integrity_check").fetchone() == ("ok",)


# -- through the protocol ---------------------------------------------------------------------

@pytest.fixture
def session(home, web):
    return Session(Config.load({"engines": ["searxng"], "searxng_url": web.url, "llm": False,
                                "search_timeout": 5.0, "fetch_timeout": 3.0, "max_pages": 3}))


def messages(session, request, client="browser"):
    return list(session.run(request, client))


def answer_of(stream):
    return next(m["data"] for m in stream if m["type"] == "answer")


def test_a_follow_up_by_conversation_id_is_answered_with_its_history(session):
    first = answer_of(messages(session, {"id": "1", "type": "ask", "question": QUESTION}))
    id = first["conversation_id"]
    assert first["position"] == 1
    stream = messages(session, {"id": "2", "type": "ask", "question": "And how tall is it?", "conversation_id": id})
    planned = next(m["data"]["queries"] for m in stream if m["type"] == "stage_end" and m["data"]["stage"] == "plan")
    assert planned == ["And how tall is it? Harrowmere"]  # the earlier question came from the history
    follow_up = answer_of(stream)
    assert follow_up["conversation_id"] == id and follow_up["position"] == 2
    assert "41 metres" in follow_up["answer"]

    listed = messages(session, {"id": "3", "type": "history", "limit": None, "query": None})
    assert [m["type"] for m in listed] == ["conversations", "done"]
    assert listed[0]["data"]["total"] == 1 and listed[0]["data"]["enabled"] is True
    assert listed[0]["data"]["conversations"][0] | {"turns": 2, "client": "browser", "title": QUESTION} \
        == listed[0]["data"]["conversations"][0]
    reopened = messages(session, {"id": "4", "type": "conversation", "conversation_id": id})[0]["data"]
    assert [t["question"] for t in reopened["turns"]] == [QUESTION, "And how tall is it?"]
    assert reopened["turns"][1]["answer"]["answer"] == follow_up["answer"]
    assert reopened["turns"][1]["answer"]["citations"] == follow_up["citations"]

    assert messages(session, {"id": "5", "type": "delete", "conversation_id": id})[-1]["data"] == {"deleted": 1}
    gone = messages(session, {"id": "6", "type": "ask", "question": "Who built it?", "conversation_id": id})
    assert [m["type"] for m in gone] == ["error"]
    assert "no conversation" in gone[0]["data"]["message"] and gone[0]["data"]["kind"] == "NoSuchConversation"
    missing = messages(session, {"id": "7", "type": "conversation", "conversation_id": id})
    assert missing[-1]["type"] == "error" and missing[-1]["id"] == "7"


def test_the_cli_and_the_browser_share_one_history(session):
    answer_of(messages(session, {"id": "1", "type": "ask", "question": QUESTION}, client="cli"))
    assert messages(session, {"id": "2", "type": "search", "query": "comet"}, client="cli")[-1]["type"] == "done"
    listed = messages(session, {"id": "3", "type": "history"}, client="browser")[0]["data"]["conversations"]
    assert [(c["client"], c["turns"]) for c in listed] == [("cli", 1)]  # a search is not a conversation


def test_with_the_history_off_nothing_new_is_kept(home, web, session):
    kept = answer_of(messages(session, {"id": "0", "type": "ask", "question": QUESTION}))
    off = Session(Config.load({"engines": ["searxng"], "searxng_url": web.url, "llm": False, "history": False}))
    answer = answer_of(messages(off, {"id": "1", "type": "ask", "question": QUESTION}))
    assert "conversation_id" not in answer and answer["answer"]
    listed = messages(off, {"id": "2", "type": "history"})[0]["data"]
    assert listed["total"] == 1 and listed["enabled"] is False
    # A conversation kept before can still be followed up; the follow-up is not kept.
    stream = messages(off, {"id": "3", "type": "ask", "question": "And how tall is it?",
                            "conversation_id": kept["conversation_id"]})
    assert "41 metres" in answer_of(stream)["answer"] and "conversation_id" not in answer_of(stream)
    # The CLI may leave one question out of the history; the browser may not change the setting.
    unkept = answer_of(messages(session, {"id": "4", "type": "ask", "question": "And how tall is it?",
                                          "conversation_id": kept["conversation_id"],
                                          "settings": {"history": False}}, client="cli"))
    assert "conversation_id" not in unkept and "41 metres" in unkept["answer"]
    assert messages(session, {"id": "5", "type": "conversation", "conversation_id": kept["conversation_id"]}
                    )[0]["data"]["turns"][-1]["position"] == 1
    refused = messages(session, {"id": "6", "type": "ask", "question": QUESTION, "settings": {"history": False}})
    assert refused[-1]["type"] == "error" and "cannot be changed from the browser" in refused[-1]["data"]["message"]


@pytest.mark.parametrize("request_sent, problem", [
    ({"type": "history", "limit": -1}, "between 0 and 500"),
    ({"type": "history", "limit": 5.0}, "must be a whole number"),
    ({"type": "history", "query": 3}, "must be a string"),
    ({"type": "conversation"}, "lacks the field 'conversation_id'"),
    ({"type": "delete"}, "names a conversation_id, or sets all"),
    ({"type": "delete", "conversation_id": "a", "all": True}, "names a conversation_id, or sets all"),
    ({"type": "ask", "question": "q", "conversation_id": "a", "conversation": []}, "either conversation_id"),
    ({"type": "conversation", "conversation_id": "\ud83d"}, "letters and digits"),
    ({"type": "ask", "question": "q", "conversation_id": "../x"}, "letters and digits"),
])
def test_a_malformed_history_request_is_a_clear_error(session, request_sent, problem):
    reply = messages(session, {"id": "x", **request_sent})
    assert [m["type"] for m in reply] == ["error"] and reply[0]["id"] == "x"
    assert problem in reply[0]["data"]["message"]


def test_a_broken_history_costs_the_keeping_not_the_answer(session, home):
    data_dir = Config.load().data_dir
    (home / "data").mkdir(parents=True, exist_ok=True)
    with open(f"{data_dir}/{HISTORY_FILE}", "wb") as broken:
        broken.write(b"not a database" * 1000)
    stream = messages(session, {"id": "1", "type": "ask", "question": QUESTION})
    assert answer_of(stream)["answer"] and stream[-1]["type"] == "done"
    assert any(m["type"] == "warning" and "not kept in the history" in m["data"]["message"] for m in stream)
    listed = messages(session, {"id": "2", "type": "history"})
    assert listed[-1]["type"] == "error" and "cannot" in listed[-1]["data"]["message"]


# -- the CLI ----------------------------------------------------------------------------------

def test_history_commands_list_show_and_delete(home):
    from localsearch.cli import cli

    history = History(Config.load().data_dir)
    runner = CliRunner()
    assert "No conversations yet." in runner.invoke(cli, ["history"]).output
    assert runner.invoke(cli, ["history", "show"]).output == "No conversations yet.\n"
    first, _ = history.add_turn(None, answer_data(QUESTION), "cli")
    history.add_turn(first, answer_data("Who built it?", "Ann Hale built it [1]."), "cli")
    second, _ = history.add_turn(None, answer_data("What is Quillstone?"), "browser")

    listed = runner.invoke(cli, ["history"])
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].startswith(second[:8]) and "What is Quillstone?" in lines[0] and "browser" in lines[0]
    assert lines[1].startswith(first[:8]) and "2 turns" in lines[1]
    assert json.loads(runner.invoke(cli, ["history", "--json", "--search", "quillstone"]).output)["total"] == 1

    shown = runner.invoke(cli, ["history", "show", first[:5]])
    assert shown.exit_code == 0
    assert "1. " + QUESTION in shown.output and "2. Who built it?" in shown.output
    assert "Ann Hale built it [1]." in shown.output and "“lit in 1887”" in shown.output and "https://a.example/" in shown.output
    assert json.loads(runner.invoke(cli, ["history", "show", "--json"]).output)["id"] == second  # the last one

    assert runner.invoke(cli, ["history", "delete", first[:5]]).output.strip() == "deleted 1 conversation"
    missing = runner.invoke(cli, ["history", "show", first[:5]])
    assert missing.exit_code == 1 and "no conversation" in missing.output
    refused = runner.invoke(cli, ["history", "delete", "--all"], input="")
    assert refused.exit_code == 2 and "--yes" in refused.output and history.conversations()[1] == 1
    assert runner.invoke(cli, ["history", "delete", "--all", "--yes"]).output.strip() == "deleted 1 conversation"
    assert runner.invoke(cli, ["history", "delete"]).exit_code == 2


def test_history_requests_do_not_wait_for_busy_workers_and_a_clear_catches_answers_in_flight(home, web):
    from helpers import Gate, Inbox, registered

    gate = Gate(urls=[web.article_urls()[0]])
    with registered(gate, "gate"):
        session = Session(Config.load({"engines": ["gate"], "llm": False, "serve_workers": 1, "serve_queue": 1}))
        History(Config.load().data_dir).add_turn(None, answer_data("An older question"), "cli")
        inbox = Inbox()
        session.handle({"id": "1", "type": "ask", "question": "What is the lighthouse?"}, "browser", inbox.deliver)
        assert gate.entered.acquire(timeout=30)  # the only worker is held in its search
        session.handle({"id": "2", "type": "ask", "question": "Another?"}, "browser", inbox.deliver)  # the queue is full
        session.handle({"id": "3", "type": "history"}, "browser", inbox.deliver)
        assert inbox.end_of("3", timeout=5)["type"] == "done"  # answered beside them, not queued
        session.handle({"id": "4", "type": "delete", "all": True}, "browser", inbox.deliver)
        assert inbox.end_of("4", timeout=5)["data"] == {"deleted": 1}
        gate.open.set()
        assert inbox.end_of("1")["type"] == "done"
        answer = next(m["data"] for m in inbox.of("1") if m["type"] == "answer")
        assert answer["answer"] and "conversation_id" not in answer  # asked before the clear: not kept
        assert any(m["type"] == "warning" and "cleared" in m["data"]["message"] for m in inbox.of("1"))
        inbox.end_of("2")
        assert History(Config.load().data_dir).conversations()[1] == 0
