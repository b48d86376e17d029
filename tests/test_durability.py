"""Durability: processes killed with SIGKILL at random moments while they write the index or the
history leave a data directory that opens, holds no half-indexed page and no broken history, and
takes up the work again; the server, the CLI and the host writing one data directory at once
corrupt nothing.

A page is half-indexed when the store has passages of it without its page record, or a page
record whose spans are not exactly its passages (``check_store``)."""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import start_localsearch_server, stop, stop_server

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

PYTHON = sys.executable
EMBEDDER = "durability-test"  # the store's collections for the direct writers

# Stores pages with random vectors as fast as chroma takes them: most of its time is spent writing.
STORE_WRITER = textwrap.dedent("""
    import random, sys
    from localsearch.config import Config
    from localsearch.plugins import pm
    from localsearch.types import Document, Passage

    data, seed, pages, urls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    store = pm.hook.vector_store(config=Config.load(overrides={"data_dir": data}), embedder_name=sys.argv[5])
    rng = random.Random(seed)
    print("ready", flush=True)
    for n in range(pages):
        i = n if seed < 0 else rng.randrange(urls)  # seed < 0: every page once, in order
        url = f"https://example.org/{i}"
        text, passages = "", []
        for j in range(rng.randint(1, 40)):  # a page stored again gets other spans
            piece = f"page {i} passage {j} " + "x" * rng.randint(5, 50)
            passages.append(Passage(url=url, text=piece, start=len(text), end=len(text) + len(piece)))
            text += piece + "\\n"
        vectors = [[rng.gauss(0, 1) for _ in range(64)] for _ in passages]
        store.add_document(Document(url=url, text=text, title=url, content_hash=str(n)), passages, vectors)
        print("stored", url, flush=True)
    print("done", flush=True)
""")

# Opens the store in a process of its own (as the next command would) and reports what is in it.
STORE_CHECK = textwrap.dedent("""
    import collections, json, random, sys
    from localsearch.config import Config
    from localsearch.plugins import pm

    store = pm.hook.vector_store(config=Config.load(overrides={"data_dir": sys.argv[1]}), embedder_name=sys.argv[2])
    pages = store.pages.get(include=["metadatas"])
    passages = store.passages.get(include=["metadatas"])
    by_page = collections.defaultdict(list)
    for id, meta in zip(passages["ids"], passages["metadatas"]):
        by_page[meta["page"]].append(id)
    count = store.count()
    dimensions = len(store.passages.get(limit=1, include=["embeddings"])["embeddings"][0]) if count else 0
    nearest = store.query([random.gauss(0, 1) for _ in range(dimensions)], min(count, 20)) if count else []
    print(json.dumps({"records": dict(zip(pages["ids"], pages["metadatas"])), "passages": by_page,
                      "count": count, "nearest": len(nearest), "recovered": store.recovered,
                      "set_aside": store.set_aside}))
""")

HISTORY_WRITER = textwrap.dedent("""
    import sys
    from localsearch.history import History

    history, conversation = History(sys.argv[1]), None
    print("ready", flush=True)
    for n in range(100000):
        if n % 7 == 0:
            conversation = None  # a new conversation now and then
        answer = {"question": f"question {n}", "answer": f"answer {n} " + "x" * (n % 500), "citations": [],
                  "sources": [], "turn": {"messages": [{"role": "user", "content": f"question {n}"}], "reply": "r"}}
        conversation, position = history.add_turn(conversation, answer, "cli")
        print(conversation, position, n, flush=True)
""")


def check_store(data: Path, embedder: str = EMBEDDER) -> dict:
    """What a new process finds in the store, after asserting that no page is half-indexed."""
    checked = subprocess.run([PYTHON, "-c", STORE_CHECK, str(data), embedder], capture_output=True, text=True,
                             timeout=120)
    assert checked.returncode == 0, f"the store does not open: {checked.stderr[-1500:]}"
    found = json.loads(checked.stdout)
    records, passages = found["records"], found["passages"]
    orphans = {page: len(ids) for page, ids in passages.items() if page not in records}
    assert not orphans, f"passages of pages without a record: {orphans}"
    for page, record in records.items():
        assert not record.get("writing"), f"{page} is still being written after a new store opened"
        spans = [span for span in record["spans"].split(",") if span]
        assert sorted(passages.get(page, [])) == sorted(f"{page}:{span}" for span in spans), \
            f"{record['url']}: the record lists {len(spans)} passages, the store holds {len(passages.get(page, []))}"
        assert record["passages"] == len(spans)
    assert found["count"] == sum(len(ids) for ids in passages.values())
    assert found["nearest"] == min(found["count"], 20), "the vector index does not answer for every passage"
    return found


def killed_at_random(command: list[str], rng: random.Random, longest: float, env=None) -> tuple[float, str]:
    """Start ``command``, wait for its "ready", SIGKILL it a random moment later; (when, its output)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert process.stdout.readline().strip() == "ready"
    moment = rng.uniform(0.0, longest)
    time.sleep(moment)
    os.kill(process.pid, signal.SIGKILL)
    output = process.stdout.read()
    process.wait()
    return moment, output


def test_a_store_killed_while_it_writes_pages_opens_whole_and_resumes(tmp_path, reliability):
    data, rng, rounds, kills_mid_page, started = tmp_path / "data", random.Random(1915), 0, 0, time.monotonic()
    set_aside = []
    while rounds < 40 and time.monotonic() - started < 60:
        rounds += 1
        _, output = killed_at_random([PYTHON, "-c", STORE_WRITER, str(data), str(rounds), "400", "120", EMBEDDER],
                                     rng, 2.0)
        stored = output.count("stored")
        found = check_store(data)
        kills_mid_page += found["recovered"] > 0
        if found["set_aside"]:
            # chroma's own vector index was cut short by the kill (upstream #7678): the store
            # opened empty, and the damaged folder is kept beside it.
            assert Path(found["set_aside"][0]).is_dir() and not found["records"]
            set_aside.append(found["set_aside"][1])
            continue
        stored_urls = {record["url"] for record in found["records"].values()}
        assert stored == 0 or stored_urls, "pages the writer had finished were lost"
    # Resuming: every page written once more, from start to end, by a writer nobody kills.
    finished = subprocess.run([PYTHON, "-c", STORE_WRITER, str(data), "-1", "120", "120", EMBEDDER],
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0 and finished.stdout.rstrip().endswith("done"), finished.stderr[-1500:]
    found = check_store(data)
    assert len(found["records"]) == 120
    seconds = time.monotonic() - started
    reliability.record("Faults", "SIGKILL at a random moment (seeded) while a process stores pages of 1-40 "
                       "passages in the on-disk chroma store, pages stored again with other spans",
                       outcome="after every kill a new process opens the store, queries it, and finds every page "
                       "with exactly its passages and no passage without its page; writing again completes",
                       bound="no half-indexed page",
                       lost="at most the page being written when killed" + (
                           f"; {len(set_aside)} times chroma's own index was left unreadable ({set_aside[0][:80]}): "
                           "the cache was set aside and started anew" if set_aside else ""),
                       measured=f"{rounds} kills ({kills_mid_page} in the middle of a page), {len(found['records'])} "
                       f"pages at the end, {seconds:.0f} s")


def test_a_store_chroma_cannot_read_is_set_aside_and_a_new_one_opens(tmp_path, reliability):
    """What a kill during chroma's own save of its vector index leaves (its index_metadata.pickle
    cut short), made on purpose: the next process moves the folder aside and works."""
    data = tmp_path / "data"
    done = subprocess.run([PYTHON, "-c", STORE_WRITER, str(data), "-1", "120", "120", EMBEDDER],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-1500:]
    pickles = list((data / "chroma").rglob("index_metadata.pickle"))
    assert pickles, "chroma wrote no vector index to cut short"
    for pickle in pickles:
        pickle.write_bytes(pickle.read_bytes()[:10])
    found = check_store(data)
    where, why = found["set_aside"]
    assert Path(where).is_dir() and Path(where).name.startswith("chroma.damaged-") and why
    assert found["records"] == {} and found["count"] == 0
    again = subprocess.run([PYTHON, "-c", STORE_WRITER, str(data), "-1", "120", "120", EMBEDDER],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and len(check_store(data)["records"]) == 120, "the new store takes pages"
    reliability.record("Faults", "chroma's vector index file cut short (what a kill during its save leaves)",
                       outcome="the next process moves the folder aside as chroma.damaged-<time>, opens a new "
                       "store and indexes into it", measured=why[:120],
                       lost="the page cache of that folder (pages are fetched again; the damaged copy is kept)")


def html_pages(folder: Path, count: int) -> list[Path]:
    rng, words = random.Random(7), ("harbour signal keeper storm island coast tower lamp ferry river "
                                    "valley comet orbit bridge canal orchard").split()
    folder.mkdir()
    paths = []
    for i in range(count):
        sections = "".join(f"<h2>Part {s}</h2>" + "".join(
            f"<p>{' '.join(rng.choice(words) for _ in range(50))} (page {i}, part {s}.{p}).</p>" for p in range(3))
            for s in range(3))
        path = folder / f"page-{i:03}.html"
        path.write_text(f"<html><head><title>Page {i}</title></head><body><main><h1>Page {i}</h1>"
                        f"{sections}</main></body></html>")
        paths.append(path)
    return paths


def cli_embedder() -> str:
    """The name of the embedder the CLI stores with (its collections carry it), without loading it."""
    from localsearch_plugins.sentence_transformers_embed import _model_location

    return _model_location("")[1]


def test_localsearch_index_killed_at_random_moments_resumes_and_completes(home, tmp_path, reliability):
    files = html_pages(tmp_path / "pages", 30)
    data, embedder = home / "data", cli_embedder()
    environment = {**os.environ, "LOCALSEARCH_DATA_DIR": str(data)}
    # --refresh: every run reads and stores every page again, so a kill lands while it writes.
    command = [PYTHON, "-m", "localsearch", "index", "--refresh", str(tmp_path / "pages")]
    started, rng = time.monotonic(), random.Random(15)
    one = subprocess.run(command[:-1] + [str(files[0])], env=environment, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-1500:]
    one_page = time.monotonic() - started  # loading the models and storing a page
    kills = []
    for round in range(4):
        for file in files:  # new text in every page: each run embeds and stores them all again
            file.write_text(file.read_text().replace("</main>", f"<p>Revised in round {round}.</p></main>"))
        process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        moment = rng.uniform(0.6 * one_page, 1.6 * one_page)  # loading, embedding or storing
        time.sleep(moment)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills.append(f"{moment:.1f} s")
        process.wait()
        check_store(data, embedder)
    assert len(kills) >= 2, f"the runs ended before they could be killed ({kills}): the test tried nothing"
    done = subprocess.run(command + ["--json"], env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-1500:]
    statuses = json.loads(done.stdout)["pages"]
    assert len(statuses) == len(files) and {s["status"] for s in statuses.values()} <= {"ok", "cached"}, statuses
    found = check_store(data, embedder)
    assert {r["url"] for r in found["records"].values()} == {f.resolve().as_uri() for f in files}
    reliability.record("Faults", f"SIGKILL of `localsearch index` over {len(files)} HTML files at random moments "
                       "(seeded: while loading, embedding or storing)",
                       outcome="after each kill the store opens with no half-indexed page; `localsearch index` "
                       "again indexes what was missing and every page is in, with its passages",
                       bound="every page ok or cached", lost="the pages not yet stored (indexed again)",
                       measured=f"{len(kills)} kills at {', '.join(kills)} (one page: {one_page:.1f} s); "
                       f"{time.monotonic() - started:.0f} s")


def check_history(data: Path) -> dict[str, list[int]]:
    """The history's integrity, and each conversation's positions (asserted 1, 2, ... n)."""
    with sqlite3.connect(data / "history.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        positions = collections.defaultdict(list)
        for conversation, position in db.execute("SELECT conversation_id, position FROM turns ORDER BY 1, 2"):
            positions[conversation].append(position)
        conversations = {row[0] for row in db.execute("SELECT id FROM conversations")}
    assert set(positions) == conversations, "a conversation without turns, or turns without their conversation"
    for conversation, kept in positions.items():
        assert kept == list(range(1, len(kept) + 1)), f"{conversation}: positions {kept}"
    return positions


def test_the_history_killed_while_it_adds_turns_keeps_every_committed_turn(tmp_path, reliability):
    from localsearch.history import History

    data, rng, rounds, turns, started = tmp_path / "data", random.Random(20), 0, 0, time.monotonic()
    while rounds < 40 and time.monotonic() - started < 30:
        rounds += 1
        _, output = killed_at_random([PYTHON, "-c", HISTORY_WRITER, str(data)], rng, 0.6)
        kept = check_history(data)
        # The last line, when the kill cut it short, reported nothing whole.
        reported = output.splitlines() if output.endswith("\n") else output.splitlines()[:-1]
        for line in reported:  # every turn the writer was told was kept is there
            conversation, position, _ = line.split()
            assert int(position) <= len(kept.get(conversation, [])), f"turn {position} of {conversation} lost"
        turns = sum(len(k) for k in kept.values())
        History(data).add_turn(None, {"question": "after the kill", "answer": "a"}, "cli")  # it takes writes again
    reliability.record("Faults", "SIGKILL at a random moment (seeded) of a process adding turns to the history "
                       "in a loop (SQLite, WAL)", outcome="integrity_check ok after each kill, every turn reported "
                       "as kept is there, positions consecutive, the next write succeeds",
                       bound="no committed turn lost", lost="nothing",
                       measured=f"{rounds} kills, {turns} turns, {time.monotonic() - started:.0f} s")


QUESTIONS = ["When was the Harrowmere lighthouse first lit?", "Who was the last keeper of the Harrowmere lighthouse?",
             "When is the Kestrel Valley comet due back?", "What does the velkaro glass beetle eat?"]


def host_asks(environment: dict, questions: list[str]) -> subprocess.Popen:
    """A host process, started as the browser starts it, asking ``questions`` and reading every
    frame back until each is done (a host whose input ends cancels what it has in flight)."""
    from localsearch.host import EXTENSION_ID

    program = "\n".join([
        "import json, struct, subprocess, sys",
        "from localsearch.native import read_message",
        f"host = subprocess.Popen([sys.executable, '-m', 'localsearch', 'host', 'chrome-extension://{EXTENSION_ID}/'],",
        "                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)",
        f"questions = {questions!r}",
        "for n, q in enumerate(questions):",
        "    body = json.dumps({'id': f'h{n}', 'type': 'ask', 'question': q}).encode()",
        "    host.stdin.write(struct.pack('=I', len(body)) + body)",
        "host.stdin.flush()",
        "ended = {}",
        "while len(ended) < len(questions):",
        "    m = read_message(host.stdout)",
        "    if m is None: break",
        "    if m.get('type') in ('done', 'error'): ended[m['id']] = m['type']",
        "host.stdin.close(); host.wait(60)",
        "print(json.dumps(ended))"])
    return subprocess.Popen([PYTHON, "-c", program], env=environment, stdout=subprocess.PIPE, text=True)


def test_the_server_the_cli_and_the_host_writing_one_data_directory_corrupt_nothing(home, web, tmp_path, reliability):
    data = home / "data"
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("LOCALSEARCH_")},
                   "LOCALSEARCH_DATA_DIR": str(data), "LOCALSEARCH_CONFIG": str(home / "config.toml"),
                   "LOCALSEARCH_ALLOWED_HOSTS": f"{web.host}:{web.port}", "LOCALSEARCH_ENGINES": "searxng",
                   "LOCALSEARCH_SEARXNG_URL": web.url, "LOCALSEARCH_LLM": "false"}
    alone = {**environment, "LOCALSEARCH_USE_SERVER": "false"}  # writes the store and the history itself
    files = html_pages(tmp_path / "pages", 12)
    log = tmp_path / "serve.log"
    server = start_localsearch_server(environment, log)
    started, answered, rounds = time.monotonic(), 0, 0
    try:
        for round in range(2):
            rounds += 1
            asks = [(subprocess.Popen([PYTHON, "-m", "localsearch", "ask", "--no-llm", "--json", q], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
                    for q, env in ((QUESTIONS[round], environment), (QUESTIONS[round + 1], alone))]
            half = len(files) // 2
            indexes = [subprocess.Popen([PYTHON, "-m", "localsearch", "index", *map(str, part),
                                         *web.article_urls()[round * 2:round * 2 + 3]], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                       for part, env in ((files[:half], environment), (files[half:], alone))]
            host = host_asks(environment, QUESTIONS[2:4])
            for process in asks + indexes:
                out, err = process.communicate(timeout=300)
                assert process.returncode == 0, (process.args[3:6], out[-1500:], err[-1500:])
            answered += len(asks)
            ended = json.loads(host.communicate(timeout=300)[0])
            assert set(ended.values()) == {"done"}, ended
            answered += len(ended)
            check_store(data, cli_embedder())
            positions = check_history(data)
            assert sum(len(p) for p in positions.values()) == answered, "a turn was lost"
        assert server.poll() is None, "the server died"
    finally:
        stop(server)
        stop_server(data)
    found = check_store(data, cli_embedder())
    assert {f.resolve().as_uri() for f in files} <= {r["url"] for r in found["records"].values()}
    reliability.record("Faults", "`localsearch serve`, `ask` and `index` through it and in their own process "
                       "(use_server false), and a native-messaging host, all at once on one data directory",
                       outcome="every answer kept in the history (integrity_check ok, positions consecutive), "
                       "every page indexed with exactly its passages, the store opens",
                       bound="nothing corrupt, no turn lost", lost="nothing",
                       measured=f"{rounds} rounds of 5 processes, {answered} answers, "
                       f"{time.monotonic() - started:.0f} s")
