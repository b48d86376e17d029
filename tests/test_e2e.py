"""End to end through the real CLI: real llama.cpp on the bundled SmolLM2 GGUF, real
sentence-transformers, real chroma on a temp dir, the test web standing in for the internet."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
QUESTION = "When was the Harrowmere lighthouse first lit?"


def run(home, *args, env=None, check=False):
    environment = {**os.environ, "LOCALSEARCH_DATA_DIR": str(home / "data"),
                   "LOCALSEARCH_CONFIG": str(home / "config.toml"), **(env or {})}
    command = [sys.executable, "-m", "localsearch", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_ask_json_with_the_llm_cites_served_pages_and_caches(home, web):
    args = ["ask", "--json", "--engine", "searxng", "--searxng-url", web.url, "--max-pages", "3", QUESTION]
    result = json.loads(run(home, *args, check=True).stdout)
    assert result["question"] == QUESTION
    assert result["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"  # the model was asked ...
    assert result["answer"].strip()
    if result["extractive"]:  # ... and its answer stands only if a source supports it
        assert any("so the extractive answer stands" in e for e in result["errors"])
    else:
        assert any(c["supported"] for c in result["citations"])
    served = set(web.article_urls())
    assert result["sources"] and all(s["url"] in served for s in result["sources"])
    numbers = {s["n"]: s["url"] for s in result["sources"]}
    for citation in result["citations"]:
        assert numbers[citation["n"]] == citation["url"]
        assert set(citation) >= {"n", "url", "title", "quote", "supported"}
        assert citation["quote"]
    import re
    backed = {c["n"] for c in result["citations"] if c["supported"]}
    for n in re.findall(r"\[(\d+)\]", result["answer"]):
        assert int(n) in numbers and int(n) in backed, "every [n] in the answer is a supported citation"
    for url in re.findall(r"https?://\S+", result["answer"]):
        assert url.rstrip(").,") in served, "no URL in the answer comes from anywhere but a source"
    assert set(result["timings"]) >= {"search", "fetch", "extract", "retrieve", "answer"}
    assert all(isinstance(v, float) for v in result["timings"].values())

    fetched = web.count("/articles/")
    again = json.loads(run(home, *args, check=True).stdout)
    assert web.count("/articles/") == fetched, "the second ask was served from the page cache"
    assert {s["status"] for s in again["sources"]} == {"cached"}


def test_the_llm_answer_streams_in_process(make_pipeline, web):
    events = list(make_pipeline(llm=True).ask(QUESTION))
    kinds = [e.type for e in events]
    assert "answer_delta" in kinds, [e.data for e in events if e.type == "error"]
    assert kinds.index("extractive_answer") < kinds.index("answer_delta") < kinds.index("answer")
    streamed = "".join(e.data["text"] for e in events if e.type == "answer_delta")
    assert streamed.strip()
    answer_stage = next(e.data for e in events if e.type == "stage_end" and e.data["stage"] == "answer")
    assert 0 < answer_stage["first_token"] <= answer_stage["seconds"]
    assert answer_stage["chars"] == len(streamed)


def test_ask_streams_a_cited_answer_with_progress(home, web):
    result = run(home, "ask", "--no-llm", "--searxng-url", web.url, QUESTION, check=True)
    assert "Answer:" in result.stdout and "Sources:" in result.stdout
    assert "[1]" in result.stdout and web.url + "/articles/harrowmere-lighthouse" in result.stdout
    for stage in ("search", "fetch", "retrieve"):
        assert stage in result.stderr


def test_index_then_search_and_offline_ask(home, web):
    pages = [web.url + "/articles/kestrel-valley-comet", web.url + "/status/404"]
    indexed = run(home, "index", *pages)
    assert indexed.returncode == 0
    assert "ok" in indexed.stdout and "HTTP error" in indexed.stdout
    found = json.loads(run(home, "search", "--json", "--offline", "comet discovery", check=True).stdout)
    assert found["passages"] and all(p["url"] == pages[0] for p in found["passages"])
    answer = json.loads(run(home, "ask", "--json", "--offline", "--no-llm", "Who discovered the comet?",
                            check=True).stdout)
    assert answer["citations"] and answer["citations"][0]["url"] == pages[0]


def test_examples_answer_offline_like_the_readme_says(home):
    examples = Path(__file__).parent.parent / "examples" / "pages"
    run(home, "index", str(examples), check=True)
    result = json.loads(run(home, "ask", "--json", "--offline", "--no-llm",
                            "When and where was the Rosetta Stone found?", check=True).stdout)
    assert result["citations"][0]["url"].endswith("rosetta-stone.html")
    assert "1799" in result["answer"]


@pytest.mark.parametrize("args, message", [
    (["ask", ""], "the question is empty"),
    (["ask", "--model", "/nonexistent.gguf", "hello"], "no such file"),
    (["ask", "--max-pages", "0", "hello"], "--max-pages"),
    (["index", "not-a-url-or-file"], "neither a URL"),
    (["ask", "--engine", "altavista", "hello"],
     "unknown search engine altavista; installed: brave, duckduckgo, local, searxng"),
])
def test_bad_arguments_fail_with_one_line(home, args, message):
    result = run(home, *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("question", ["", "   "])
def test_an_empty_question_is_a_fatal_answer_with_exit_1(home, question):
    """As the README says: exit 1 and a "fatal" key when no answer could be made."""
    result = run(home, "ask", "--json", "--no-llm", question)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["fatal"] == "the question is empty"
    plain = run(home, "ask", "--no-llm", question)
    assert plain.returncode == 1 and "Error: the question is empty" in plain.stderr


def test_bad_config_file_fails_cleanly_and_debug_shows_the_traceback(home):
    (home / "config.toml").write_text("top_k = 'many'\n")
    result = run(home, "ask", "--no-llm", "hello")
    assert result.returncode == 1 and "Error: setting 'top_k'" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Traceback" in run(home, "--debug", "ask", "--no-llm", "hello").stderr


def test_no_results_exits_non_zero_with_json(home, web):
    result = run(home, "ask", "--json", "--no-llm", "--searxng-url", web.url, "xylophonic zqwv brrrmph")
    assert result.returncode == 1
    assert "no search results" in json.loads(result.stdout)["fatal"]


def test_eval_command_reports_the_figures(home, web):
    result = run(home, "eval", "tests/testweb/qa.jsonl", "--searxng-url", web.url, "--no-llm", "--limit", "2", "--json",
                 check=True)
    report = json.loads(result.stdout)
    assert report["summary"]["questions"] == 2 and len(report["questions"]) == 2
    assert set(report["summary"]) >= {"accuracy", "citation_precision", "supported_share", "median_seconds"}


def test_plugins_and_config_commands(home):
    plugins = json.loads(run(home, "plugins", "--json", check=True).stdout)
    assert {"http", "chroma", "llama_cpp"} <= {p["name"] for p in plugins}
    config = json.loads(run(home, "config", "--json", env={"LOCALSEARCH_TOP_K": "4"}, check=True).stdout)
    assert config["path"] == str(home / "config.toml")
    top_k = next(s for s in config["settings"] if s["name"] == "top_k")
    assert top_k["value"] == 4 and top_k["origin"] == "LOCALSEARCH_TOP_K"


def test_a_follow_up_reuses_the_kv_cache(home, web):
    """Through the session, as the browser and the CLI ask: the follow-up names its
    conversation, and the history gives the model the earlier prompt and reply word for word."""
    from localsearch.config import Config
    from localsearch.session import Session

    session = Session(Config.load({"engines": ["searxng"], "searxng_url": web.url, "max_pages": 2}))
    first = next(m["data"] for m in session.run({"id": "1", "type": "ask", "question": QUESTION})
                 if m["type"] == "answer")
    assert first["turn"]["reply"].strip() and first["turn"]["messages"][0]["role"] == "system"
    stream = list(session.run({"id": "2", "type": "ask", "question": "Who built the lighthouse?",
                               "conversation_id": first["conversation_id"]}))
    assert stream[-1]["type"] == "done", stream[-1]
    usage = next(m["data"]["usage"] for m in stream if m["type"] == "answer")
    # The earlier prompt (and most of the reply) came from llama.cpp's KV cache, not prefill.
    assert usage["cached_tokens"] >= first["usage"]["prompt_tokens"]
    assert usage["prompt_tokens"] > usage["cached_tokens"]


def test_ask_continue_on_the_command_line_continues_the_last_conversation(home, web):
    common = ["--json", "--no-llm", "--searxng-url", web.url, "--max-pages", "2"]
    none_yet = run(home, "ask", "--continue", *common, "And how tall is it?")
    assert none_yet.returncode == 2 and "no earlier conversation" in none_yet.stderr
    first = json.loads(run(home, "ask", *common, QUESTION, check=True).stdout)
    follow_up = json.loads(run(home, "ask", "-c", *common, "And how tall is it?", check=True).stdout)
    assert follow_up["conversation_id"] == first["conversation_id"] and follow_up["position"] == 2
    assert "41 metres" in follow_up["answer"]  # found with the earlier question's subject
    new = json.loads(run(home, "ask", *common, QUESTION, check=True).stdout)  # a plain ask begins a new one
    assert new["conversation_id"] != first["conversation_id"] and new["position"] == 1
    unkept = json.loads(run(home, "ask", "--no-history", *common, QUESTION, check=True).stdout)
    assert "conversation_id" not in unkept

    listed = json.loads(run(home, "history", "--json", check=True).stdout)
    assert [(c["id"], c["turns"]) for c in listed["conversations"]] == [(new["conversation_id"], 1),
                                                                       (first["conversation_id"], 2)]
    shown = json.loads(run(home, "history", "show", "--json", first["conversation_id"][:6], check=True).stdout)
    assert [t["question"] for t in shown["turns"]] == [QUESTION, "And how tall is it?"]
    assert shown["turns"][1]["answer"]["citations"] == follow_up["citations"]
    again = json.loads(run(home, "ask", "--conversation", first["conversation_id"][:6], *common, "Who built it?",
                           check=True).stdout)
    assert again["conversation_id"] == first["conversation_id"] and again["position"] == 3
    assert not (home / "data" / "conversation.json").exists()


def test_ask_shows_the_short_answer_first_and_warms_the_next_question(home, web):
    """The first ask answers in its own process, then leaves a server that answers the next warm."""
    from helpers import server_status, stop_server

    data = home / "data"
    env = {"LOCALSEARCH_START_SERVER": "true", "LOCALSEARCH_SERVER_IDLE_MINUTES": "1"}
    args = ["--engine", "searxng", "--searxng-url", web.url, "--max-pages", "3", QUESTION]
    try:
        # At a terminal (script(1) gives it one), as a person asks.
        command = shlex.join([sys.executable, "-m", "localsearch", "ask", "--no-llm", "--quiet", *args])
        environment = {**os.environ, "LOCALSEARCH_DATA_DIR": str(data),
                       "LOCALSEARCH_CONFIG": str(home / "config.toml"), **env}
        shown = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, text=True,
                               env=environment, stdin=subprocess.DEVNULL, timeout=600)
        assert shown.returncode == 0, shown.stdout[-2000:]
        first = [re.sub(r"\x1b\[[0-9;]*m", "", line).rstrip("\r") for line in shown.stdout.splitlines()]
        assert "\x1b[1m" in shown.stdout  # the short answer is bold
        short = first[first.index("Answer:") + 1]
        assert "1887" in short and short.endswith("[1]") and len(short) < 40, first  # the value, then the sentence
        assert "1887" in first[first.index("Answer:") + 2]
        for _ in range(900):  # it loads the embedder before it listens
            status = server_status(data)
            if status is not None:
                break
            time.sleep(0.1)
        assert status is not None, (data / "server.log").read_text()
        second = json.loads(run(home, "ask", "--json", "--no-llm", *args, env=env, check=True).stdout)
        assert "load" not in second["timings"], second["timings"]  # answered by the warm server
        assert second["short_answer"]["text"] in short and second["short_answer"]["n"] == 1
    finally:
        stop_server(data)
