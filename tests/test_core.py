"""The core without models: config, text helpers, plugin registration, engine isolation."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from localsearch import hookimpl
from localsearch.config import Config
from localsearch.errors import ConfigError
from localsearch.pipeline import Pipeline
from localsearch.search import fuse
from localsearch.plugins import describe_plugins, pm
from localsearch.text import normalize_url, split_sentences
from localsearch.types import SearchResult

BUILT_IN = {"searxng", "duckduckgo", "local", "http", "extract", "chunker",
            "sentence_transformers", "chroma", "llama_cpp"}


def test_import_and_help_load_nothing_heavy():
    code = ("import sys, localsearch, localsearch.cli, localsearch.pipeline\n"
            "from localsearch.plugins import load_plugins; load_plugins()\n"
            "heavy = {'torch', 'sentence_transformers', 'chromadb', 'llama_cpp', 'trafilatura', 'ddgs', 'httpx'}\n"
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_built_in_plugins_load_through_the_entry_point_group(home):
    names = {p["name"] for p in describe_plugins() if "error" not in p}
    assert BUILT_IN <= names
    by_name = {p["name"]: p for p in describe_plugins()}
    assert "fetch_page" in by_name["http"]["hooks"]
    assert by_name["chroma"]["package"] == "localsearch"


def test_config_layers_file_env_flags(home, monkeypatch):
    (home / "config.toml").write_text('top_k = 3\nengines = ["searxng"]\nsearxng_url = "http://x"\n')
    monkeypatch.setenv("LOCALSEARCH_MAX_PAGES", "7")
    monkeypatch.setenv("LOCALSEARCH_OFFLINE", "yes")
    config = Config.load({"top_k": 9})
    assert (config.top_k, config.max_pages, config.offline, config.engines) == (9, 7, True, ["searxng"])
    described = {s["name"]: s for s in config.describe()}
    assert described["max_pages"]["origin"] == "LOCALSEARCH_MAX_PAGES"
    assert described["top_k"]["origin"] == "command line"
    assert described["chunk_chars"]["owner"] == "chunker"  # a setting a plugin registered, by its name
    assert str(home / "data") == config.data_dir


@pytest.mark.parametrize("content, message", [
    ("top_k = 'many'", "top_k"),
    ("top_k = = 3", "not valid TOML"),
    ("offline = 3", "offline"),
])
def test_bad_config_file_is_a_clear_error(home, content, message):
    (home / "config.toml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        Config.load()


@pytest.mark.parametrize("name, value", [("TOP_K", "lots"), ("MAX_PAGES", "-1"), ("MAX_PAGES", "0"),
                                         ("SEARCH_TIMEOUT", "nan"), ("FETCH_TIMEOUT", "inf"),
                                         ("TEMPERATURE", "-0.5")])
def test_bad_environment_value_is_a_clear_error(home, monkeypatch, name, value):
    monkeypatch.setenv(f"LOCALSEARCH_{name}", value)
    with pytest.raises(ConfigError, match=f"LOCALSEARCH_{name}"):
        Config.load()


def test_config_path_that_is_a_folder_is_a_clear_error(home, monkeypatch):
    monkeypatch.setenv("LOCALSEARCH_CONFIG", str(home))
    with pytest.raises(ConfigError, match="cannot read config file"):
        Config.load()


def test_a_hung_engine_does_not_hold_up_the_exit(home):
    code = ("import time\n"
            "from localsearch import hookimpl\n"
            "from localsearch.pipeline import Pipeline\n"
            "from localsearch.plugins import pm\n"
            "class Hung:\n"
            "    name = 'hung'\n"
            "    def search(self, query, limit, pipeline):\n"
            "        time.sleep(60)\n"
            "class Plugin:\n"
            "    @hookimpl\n"
            "    def register_search_engines(self, register):\n"
            "        register(Hung())\n"
            "pm.register(Plugin())\n"
            "print(Pipeline(search_timeout=0.5).search(['q'], ['hung'])[1]['hung']['status'])\n")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "timeout", out.stderr
    assert time.perf_counter() - started < 15


def test_citation_markers_in_every_form_and_no_invented_urls():
    from localsearch.citations import sanitize_answer_text
    from localsearch.text import citation_numbers

    assert citation_numbers("1-3, 5") == [1, 2, 3, 5]
    assert citation_numbers("2 and 1") == [2, 1]
    sources = {1: "https://a.org/x", 2: "https://b.org/"}
    assert sanitize_answer_text("Lit in 1887, see https://evil.example/x [1].", sources) == "Lit in 1887, see [1]."
    assert sanitize_answer_text("Lit in 1887 [1](https://evil.example/y). See [the docs](http://e.org/d) "
                                "[source 2] [7] [1–2].", sources) == "Lit in 1887 [1]. See the docs [2] [1][2]."
    assert sanitize_answer_text("Read (https://a.org/x) or www.evil.com [Sources 1, 9].", sources) == \
        "Read (https://a.org/x) or [1]."


def test_sentences_keep_offsets_and_abbreviations():
    text = "Dr. Smith came in 1887. He built 4.2 km of track!\nThen J. R. Hale left. “Done.” End"
    pieces = [text[a:b] for a, b in split_sentences(text)]
    assert pieces == ["Dr. Smith came in 1887.", "He built 4.2 km of track!", "Then J. R. Hale left.",
                      "“Done.”", "End"]
    assert split_sentences("  Hi there. Bye now.", start=100) == [(102, 111), (112, 120)]


def test_urls_are_deduplicated_and_fused_by_rank():
    assert normalize_url("HTTPS://Example.org/a/?utm_source=x&id=2#top") == "https://example.org/a?id=2"
    fused = fuse([
        [SearchResult("https://a.org/x"), SearchResult("https://b.org/")],
        [SearchResult("https://b.org"), SearchResult("https://c.org")],
    ])
    assert [r.url for r in fused] == ["https://b.org/", "https://a.org/x", "https://c.org"]
    assert fused[0].rank == 1 and fused[0].score > fused[1].score


class _Engines:
    """A throwaway plugin with a good, a raising, a slow and a malformed engine."""

    class Good:
        name = "good"

        def search(self, query, limit, pipeline):
            return [SearchResult(url=f"https://good.example/{query.replace(' ', '-')}", title="Good")]

    class Broken:
        name = "broken"

        def search(self, query, limit, pipeline):
            raise RuntimeError("engine exploded")

    class Slow:
        name = "slow"

        def search(self, query, limit, pipeline):
            time.sleep(3)
            return [SearchResult(url="https://slow.example/")]

    class Garbage:
        name = "garbage"

        def search(self, query, limit, pipeline):
            return "not a list"

    class BadUrls:
        name = "badurls"

        def search(self, query, limit, pipeline):
            return [SearchResult(url="http://[oops/x"), SearchResult(url="javascript:alert(1)"),
                    SearchResult(url="http://host:99999/"), SearchResult(url="https://fine.example/a")]

    @hookimpl
    def register_search_engines(self, register):
        for engine in (self.Good(), self.Broken(), self.Slow(), self.Garbage(), self.BadUrls()):
            register(engine)


@pytest.fixture
def throwaway_engines():
    plugin = _Engines()
    pm.register(plugin, name="throwaway-engines")
    try:
        yield plugin
    finally:
        pm.unregister(name="throwaway-engines")
    assert pm.get_plugin("throwaway-engines") is None


def test_one_failing_engine_never_sinks_the_others(home, throwaway_engines):
    pipeline = Pipeline(search_timeout=1.0)
    started = time.perf_counter()
    results, report = pipeline.search(["tide tables"], ["good", "broken", "slow", "garbage", "badurls", "missing"])
    assert time.perf_counter() - started < 2.5  # the slow engine is abandoned at its timeout
    assert [r.url for r in results] == ["https://good.example/tide-tables", "https://fine.example/a"]
    assert report["badurls"]["count"] == 1  # malformed URLs are dropped, not fatal
    assert report["good"]["status"] == "ok" and report["good"]["count"] == 1
    assert report["broken"] == {**report["broken"], "status": "error", "error": "RuntimeError: engine exploded"}
    assert report["slow"]["status"] == "timeout"
    assert report["garbage"]["status"] == "error" and "not a list" in report["garbage"]["error"]
    assert "no such engine" in report["missing"]["error"]


def test_throwaway_plugin_is_listed_while_registered(home, throwaway_engines):
    names = [p["name"] for p in describe_plugins()]
    assert "throwaway-engines" in names


def test_keyword_scores_favour_the_questions_rarer_words():
    from localsearch.text import keyword_scores, keywords

    assert keywords("How many specimens were collected?") == {"specimen", "collect"}
    assert keywords("the Norvane ferries") == keywords("a Norvane ferry") == {"norvane", "ferry"}
    sentences = ["The glass beetle lives in the cloud forests of Velkaro.",
                 "The glass beetle was described in 2024.",
                 "The expedition collected 14 specimens of the glass beetle."]
    scores = keyword_scores("How many specimens of the glass beetle were collected?", sentences)
    assert scores[2] == max(scores) and scores[2] > 2 * scores[0]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert keyword_scores("the of and", sentences) == [0.0, 0.0, 0.0]


def test_bm25_prefers_rare_words_and_does_not_reward_length_alone():
    from localsearch.text import bm25_scores

    texts = ["max_connections (integer) Determines the maximum number of concurrent connections.",
             "The server accepts connections. " * 20,
             "Unrelated text about vacuum and analyze."]
    scores = bm25_scores("What is the default of max_connections?", texts)
    assert scores[0] == max(scores) and scores[2] == 0.0
    # The same words in a text padded with twenty other sentences count for less.
    short, padded = bm25_scores("vacuum analyze", ["Run vacuum and analyze.",
                                                    "Run vacuum and analyze. " + "Other words here. " * 20])
    assert short > padded > 0
    assert bm25_scores("the of and", texts) == [0.0, 0.0, 0.0]


def test_a_question_naming_a_setting_finds_the_section_named_for_it():
    from localsearch.config import Config
    from localsearch.plugins import pm
    from localsearch.selection import _names, select
    from localsearch.types import Passage

    assert _names("What is the default of max_connections? And `push.default`, --depth, -j, age()?") == \
        {"max_connections", "push.default", "--depth", "-j", "age"}
    question = "What is the default value of max_connections in PostgreSQL?"
    embed = pm.hook.embedder(config=Config.load()).embed
    passages = [Passage(url="https://a.example/server", start=0, end=98, kind="definition",
                        section="Options › -N max-connections",
                        text="Sets the maximum number of client connections; the default is chosen by initdb."),
                Passage(url="https://b.example/config", start=0, end=80, kind="definition",
                        section="Connection Settings › max_connections (integer)",
                        text="The default is typically 100 connections, but might be less.")]
    query = embed([question], "query")[0]

    def best(bonus):
        chosen = select(question, Config.load(overrides={"section_name_bonus": bonus}), [], passages, query, embed)
        return {c.url: c.score for c in chosen.candidates}

    without, with_bonus = best(0.0), best(0.15)
    assert with_bonus["https://b.example/config"] == pytest.approx(without["https://b.example/config"] + 0.15, abs=1e-3)
    assert with_bonus["https://a.example/server"] == without["https://a.example/server"]  # "max-connections" is another name
