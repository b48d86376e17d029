"""The host's boundary, on a real ``localsearch serve`` behind a real ``localsearch host``: callers
other than the extension are refused; a page, an image or a message past its limit and a
malformed frame each get a clear error while the host goes on serving; nothing a page or a
message says is executed or written outside the data directory; and the API keys of the config
file never appear in a log, an error, a message or the JSON of a command."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers import start_localsearch_server, stop
from test_host import ORIGIN, Host, frame

from localsearch.host import EXTENSION_ID
from localsearch.native import MAX_FROM_BROWSER
from localsearch.protocol import MAX_HTML, MAX_IMAGE

pytestmark = pytest.mark.reliability

QUESTION = "When was the Harrowmere lighthouse first lit?"
BRAVE_KEY = f"BSA-never-shown-{uuid.uuid4().hex}"
LLM_KEY = f"sk-never-shown-{uuid.uuid4().hex}"
OTHER_KEY = f"other-never-shown-{uuid.uuid4().hex}"
SECRETS = (BRAVE_KEY, LLM_KEY, OTHER_KEY)


class LoggedHost(Host):
    """A host whose stderr is kept in a file (the browser's console would show it)."""

    def __init__(self, environment: dict, stderr: Path, *caller: str):
        wrapper = ["/bin/sh", "-c", f'exec "{sys.executable}" -m localsearch host "$@" 2>>"{stderr}"', "host"]
        super().__init__(environment, *caller, program=wrapper)


def tree(root: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Every path under ``root`` (but ``skip``) with its kind, size and modification time."""
    found = {}
    for path in root.rglob("*"):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        info = path.lstat()
        found[str(path.relative_to(root))] = (path.is_dir(), info.st_size if path.is_file() else 0, info.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory, web):
    """A private HOME with the data directory and the config file in it (with three API keys),
    a server started on it, and the environment of its hosts."""
    folder = tmp_path_factory.mktemp("boundary")
    home = folder / "home"
    data, config = home / "data", home / "config.toml"
    home.mkdir()
    config.write_text(f'brave_api_key = "{BRAVE_KEY}"\nllm_api_key = "{LLM_KEY}"\nsearch_api_key = "{OTHER_KEY}"\n'
                      f'llm_url = "{web.url}/status/500/v1"\nbrave_url = "{web.url}/brave/res/v1/web/search"\n')
    (home / "work").mkdir(parents=True)
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith(("LOCALSEARCH_", "XDG_"))},
                   "HOME": str(home), "LOCALSEARCH_DATA_DIR": str(data), "LOCALSEARCH_CONFIG": str(config),
                   "LOCALSEARCH_ALLOWED_HOSTS": f"{web.host}:{web.port}", "LOCALSEARCH_ENGINES": "searxng,brave",
                   "LOCALSEARCH_SEARXNG_URL": web.url, "LOCALSEARCH_LLM": "false"}
    log = folder / "serve.log"  # the test's, outside the HOME whose files are compared
    process = start_localsearch_server(environment, log, cwd=home / "work")
    yield {"home": home, "data": data, "environment": environment, "log": log, "process": process}
    stop(process)


def test_callers_other_than_the_extension_are_refused(tmp_path, reliability):
    data = tmp_path / "data"
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("LOCALSEARCH_")},
                   "LOCALSEARCH_DATA_DIR": str(data), "LOCALSEARCH_CONFIG": str(tmp_path / "config.toml")}
    callers = {"another Chromium extension": ["chrome-extension://abcdefghijklmnopabcdefghijklmnop/"],
               "another Firefox add-on": [str(tmp_path / "org.localsearch.host.json"), "evil@example.org"],
               "a look-alike id": [f"chrome-extension://{EXTENSION_ID}x/"],
               "no caller at all (started by hand)": []}
    for what, arguments in callers.items():
        host = Host(environment, *arguments)
        host.send({"id": "q", "type": "ask", "question": QUESTION})  # sent anyway: never relayed
        refusal = host.wait(lambda m: m["type"] == "error", timeout=30)
        assert refusal["data"]["kind"] == "refused", (what, refusal)
        assert host.close() == 1 and host.problems() == []
        assert [m["type"] for m in host.messages] == ["error"], (what, host.messages)
    assert not (data / "serve.sock").exists(), "a refused caller starts no server"
    assert (data / "host.log").read_text().count("refused:") == len(callers)
    reliability.record("Host boundary", "the host started by callers other than the extension: another "
                       "extension's origin, another Firefox add-on, a look-alike id, no caller at all",
                       outcome="one 'refused' error naming why, exit 1, no server started, the request sent "
                               "after it never relayed", measured=f"{len(callers)} of {len(callers)} refused")


def test_limits_each_get_a_clear_error_and_the_host_keeps_serving(served, reliability):
    host = Host(served["environment"], ORIGIN)
    page = {"url": "https://intranet.example/notes", "title": "Notes"}
    cases = [
        ("page HTML of MAX_HTML + 1 characters", {"id": "html", "type": "ask_page", "question": "q",
                                                  "page": {**page, "html": "<p>" + "x" * (MAX_HTML - 2)}},
         "html"),
        ("an image of MAX_IMAGE + 1 characters of base64", {"id": "img", "type": "image_text",
                                                           "image": "A" * (MAX_IMAGE + 1)}, "image"),
        ("a question of 2,001 characters", {"id": "long", "type": "ask", "question": "q" * 2001}, "question"),
        ("a frame of MAX_FROM_BROWSER + 1 bytes", struct.pack("=I", MAX_FROM_BROWSER + 1)
         + b"x" * (MAX_FROM_BROWSER + 1), "over the limit"),
        ("a frame within the limit whose request, escaped for the server, is over its line limit",
         frame(('{"id": "wide", "type": "ask", "question": "q", "junk": "' + "\U0001F600" * (MAX_FROM_BROWSER // 4 - 20)
                + '"}').encode()), "over"),
        ("a malformed frame (not JSON)", frame(b'{"id": "m", "type": "ask", "question": '), "not JSON"),
        ("a frame that is not UTF-8", frame(b"\xff\xfe\xfd"), "not UTF-8"),
    ]
    for n, (what, data, problem) in enumerate(cases):
        size = len(data) if isinstance(data, bytes) else len(json.dumps(data))
        host.messages.clear()
        started = time.monotonic()
        host.send(data if isinstance(data, bytes) else frame(data))
        error = host.wait(lambda m: m["type"] == "error", timeout=60)
        assert problem in error["data"]["message"], (what, error)
        host.send({"id": f"after{n}", "type": "ping"})
        assert host.wait(lambda m, n=n: m.get("id") == f"after{n}", timeout=60)["type"] == "pong", what
        reliability.record("Host boundary", what, outcome=f"error: {error['data']['message'][:120]}; the next "
                           "request answered", bound="a clear error; the host keeps serving",
                           measured=f"{size:,} bytes sent; error and the next pong in "
                                    f"{time.monotonic() - started:.1f} s")
    host.send({"id": "real", "type": "ask", "question": QUESTION})
    assert host.end_of("real", timeout=120)["type"] == "done"
    assert host.close() == 0 and host.problems() == []
    assert served["process"].poll() is None


def test_nothing_a_page_or_message_says_is_executed_or_written_outside_the_data_directory(served, web, reliability):
    home, data = served["home"], served["data"]
    marker = f"/tmp/localsearch-boundary-{uuid.uuid4().hex}"
    shell = [f"$(touch {marker}-a)", f"`touch {marker}-b`", f"; touch {marker}-c", f"| touch {marker}-d",
             f"&& touch {marker}-e", "$(touch pwned)", "; rm -rf ~", "../../etc/passwd"]
    hostile = " ".join(shell)
    html = (f"<html><head><title>{hostile}</title><script>fetch('file:///etc/passwd')</script></head><body>"
            f"<article><p>{hostile}. The Fenwick orchard cooperative meets on Thursday 9 May at the old mill, "
            "because the barn roof is being repaired by the volunteers this spring.</p>"
            "<img src='file:///etc/passwd' width='800' height='600'><img src='../../../../etc/shadow'>"
            "<iframe src='javascript:alert(1)'></iframe></article></body></html>")
    requests = [
        {"id": hostile[:128], "type": "ask", "question": f"What is {hostile}?", "settings": {"llm": False}},
        {"id": "../../../../tmp/x", "type": "ask", "question": QUESTION, "conversation_id": "../../../etc/passwd"},
        {"id": "conv", "type": "conversation", "conversation_id": "'; DROP TABLE turns; --"},
        {"id": "del", "type": "delete", "conversation_id": f"../../{marker}"},
        {"id": "page", "type": "ask_page", "question": f"Where is the meeting? {hostile}",
         "page": {"url": f"https://intranet.example/{shell[0]}/../../etc/passwd", "title": hostile, "html": html,
                  "selection": hostile}, "settings": {"llm": False}},
        {"id": "file-page", "type": "ask_page", "question": "q", "page": {"url": "file:///etc/passwd", "html": "x"}},
        {"id": "index", "type": "index", "urls": ["file:///etc/passwd", f"file://{home}/config.toml",
                                                   f"http://{web.host}:{web.port}/articles/{shell[0]}"]},
        {"id": "image", "type": "image_text", "url": "file:///etc/passwd"},
        {"id": "tool", "type": "image_run", "tool": f"../../bin/sh {shell[0]}", "image": "AAAA"},
        {"id": "dir", "type": "ask", "question": QUESTION, "settings": {"data_dir": str(home / "elsewhere")}},
        {"id": "model", "type": "ask", "question": QUESTION, "settings": {"model": f"/tmp/{shell[0]}.gguf"}},
        {"id": "prefs", "type": "preferences", "set": {"searxng_url": f"http://x.example/{shell[0]}"}},
        {"id": "prefs-back", "type": "preferences", "set": {"searxng_url": None}},
        {"id": "history", "type": "history", "query": hostile[:500]},
    ]
    host = Host(served["environment"], ORIGIN)
    host.send({"id": "p", "type": "ping"})  # the connection up before the snapshot
    host.wait(lambda m: m.get("id") == "p")
    outside, inside = tree(home, skip=data), tree(data)
    for request in requests:
        host.send(request)
        end = host.end_of(request["id"], timeout=120)
        assert end["data"].get("kind") not in ("internal", "transport"), (request["id"], end)
    assert host.close() == 0 and host.problems() == []
    page_answer = next(m["data"] for m in host.messages if m["id"] == "page" and m["type"] == "answer")
    assert "old mill" in page_answer["answer"]
    ends = {m["id"]: m for m in host.messages if m["type"] in ("done", "error")}
    for refused in ("file-page", "image", "tool", "dir", "model"):
        assert ends[refused]["type"] == "error", ends[refused]
    everything = json.dumps(host.messages)
    assert "root:x:0:0" not in everything and BRAVE_KEY not in everything
    assert not list(Path("/tmp").glob(Path(marker).name + "*")), "a shell ran what a page or message said"
    assert tree(home, skip=data) == outside, "something was written outside the data directory"
    written = sorted(set(tree(data)) - set(inside))
    assert not any(".." in name or "passwd" in name or "touch" in name for name in written), written
    assert served["process"].poll() is None
    reliability.record("Host boundary", f"{len(requests)} requests whose ids, questions, conversation ids, page "
                       "URL, title, HTML, selection, image URL, tool name and settings say `$(touch …)`, `; rm -rf ~`, "
                       "`../../etc/passwd`, `file:///etc/passwd`, SQL",
                       outcome="each answered or refused with a clear error; no file created; nothing written "
                               "outside the data directory; no file: URL read from the browser",
                       bound="no marker file; HOME outside the data directory unchanged",
                       measured=f"0 marker files; {len(outside)} paths outside the data directory unchanged; "
                                f"{len(written)} new inside it")


def test_api_keys_never_appear_in_logs_errors_messages_or_json(served, web, tmp_path, reliability):
    environment, data = served["environment"], served["data"]
    stderr = tmp_path / "host.stderr"
    host = LoggedHost(environment, stderr, ORIGIN)
    # The brave engine refuses the key (the test web takes only "test-key"), the LLM server
    # answers 500, a page fails, a request is malformed: every error path a key could leak by.
    host.send({"id": "a", "type": "ask", "question": QUESTION, "settings": {"llm": True}})
    host.send({"id": "b", "type": "ask", "question": QUESTION, "settings": {"engines": ["brave"]}})
    host.send(frame(b'{"id": "c", "type": "ask", "question": '))
    host.send({"id": "d", "type": "ask", "question": QUESTION, "settings": {"brave_api_key": "x"}})
    host.send({"id": "s", "type": "status"})
    host.send({"id": "p", "type": "preferences"})
    for id in ("a", "b", "d", "s", "p"):
        host.end_of(id, timeout=120)
    assert host.close() == 0
    engines = next(m["data"]["engines"] for m in host.messages if m["id"] == "a" and m["type"] == "search_results")
    warnings = [m["data"]["message"] for m in host.messages if m["id"] == "a" and m["type"] == "warning"]
    assert engines["brave"]["status"] == "blocked", engines
    assert any("the language model failed" in w for w in warnings), warnings
    refused = next(m for m in host.messages if m["id"] == "d" and m["type"] == "error")
    assert "cannot be changed from the browser" in refused["data"]["message"]

    def cli(*arguments, **extra):
        done = subprocess.run([sys.executable, "-m", "localsearch", *arguments], capture_output=True, text=True, check=False,
                              env={**environment, **extra}, timeout=300, cwd=served["home"] / "work")
        return done.stdout + done.stderr

    outputs = {
        "the host's messages": json.dumps(host.messages),
        "the host's stderr": stderr.read_text(),
        "ask --json through the server": cli("ask", "--json", QUESTION),
        "ask --json --debug in process, the LLM server failing": cli("--debug", "ask", "--json", QUESTION,
                                                                    LOCALSEARCH_USE_SERVER="false",
                                                                    LOCALSEARCH_LLM="true"),
        "config --json": cli("config", "--json"),
        "config": cli("config"),
        "doctor --json": cli("doctor", "--json"),
    }
    for path in data.rglob("*"):  # host.log, server state, the history: every file of the data directory
        if path.is_file() and not path.is_socket():
            outputs[f"data/{path.relative_to(data)}"] = path.read_bytes().decode("utf-8", "replace")
    outputs["the server's log"] = served["log"].read_text()
    assert "brave_api_key" in outputs["config --json"] and "(set)" in outputs["config --json"]
    assert "search engines" in outputs["doctor --json"]
    leaks = {where: [s for s in SECRETS if s in text] for where, text in outputs.items()}
    assert not any(leaks.values()), {where: found for where, found in leaks.items() if found}
    reliability.record("Host boundary", "API keys in the config file (brave_api_key, llm_api_key, an unknown "
                       "*_api_key) while the brave engine refuses the key, the LLM server answers 500, a frame "
                       "is malformed and a request tries to set a key",
                       outcome="no key in the host's messages and stderr, host.log, the server's log, any file of "
                               "the data directory, `ask --json` (through the server, and in process with --debug), "
                               "`config`, `config --json`, `doctor --json`",
                       bound="0 occurrences", measured=f"0 in {len(outputs)} outputs "
                                                       f"({sum(len(t) for t in outputs.values()):,} characters)")


def test_a_key_a_server_echoes_back_in_its_error_is_hidden_in_the_answer(home, web, reliability):
    """A model server that repeats the request's Authorization header in its error body: the
    warning quotes the body, and the key in it is "(hidden)" (every message passes redact)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from localsearch.config import Config
    from localsearch.session import Session

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.dumps({"error": f"bad key: {self.headers.get('Authorization')}"}).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        session = Session(Config.load({"engines": ["searxng"], "searxng_url": web.url, "llm": True,
                                       "llm_url": f"http://127.0.0.1:{server.server_port}/v1", "llm_api_key": LLM_KEY}))
        messages = list(session.run({"id": "q", "type": "ask", "question": QUESTION}, "cli"))
        session.close()
    finally:
        server.shutdown()
    said = json.dumps(messages)
    warnings = [m["data"]["message"] for m in messages if m["type"] == "warning"]
    assert any("(hidden)" in w for w in warnings), warnings  # the echo reached the warning, hidden
    assert LLM_KEY not in said
    assert messages[-1]["type"] == "done", "answered with the extractive answer"
    reliability.record("Host boundary", "a model server that echoes the API key back in its error body",
                       outcome="the warning quotes the error with the key as (hidden); answered extractively",
                       measured=f"{len(said):,} characters of messages searched", lost="nothing")


def test_placeholder_keys_of_local_servers_do_not_blank_out_ordinary_text(home, reliability):
    """"ollama" or "lm-studio" as an API key is a placeholder, not a secret: a page about ollama
    keeps its words; a real key is hidden wherever it appears."""
    from localsearch.config import Config, redact

    Config.load({"llm_api_key": "ollama", "brave_api_key": "lm-studio"})
    assert redact({"title": "run ollama serve", "url": "https://github.com/ollama/ollama"}) == \
        {"title": "run ollama serve", "url": "https://github.com/ollama/ollama"}
    Config.load({"llm_api_key": LLM_KEY})
    assert redact(f"the server said: bad key {LLM_KEY}") == "the server said: bad key (hidden)"
    reliability.record("Host boundary", "placeholder API keys of local servers (\"ollama\", \"lm-studio\") beside "
                       "a page about ollama", outcome="the page's words and URLs kept; a real key still hidden",
                       lost="nothing")
