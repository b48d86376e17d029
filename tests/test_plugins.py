"""Plugin traps (issue 9): what a plugin gets wrong is reported and skipped, never fatal.

In-process tests register throwaway plugins with ``pm.register`` and unregister them in
``finally``. What only shows through the real CLI (the LOAD/DISABLE variables, a raising
``register_commands``, an unknown config setting) is tested with real third-party plugins,
installed the way a user's would be: a module and a ``*.dist-info`` folder with an
``entry_points.txt`` on PYTHONPATH, for a ``python -m localsearch`` subprocess.

New functions are reached as ``plugins.<name>`` inside the tests (not imported at the top),
so that each test fails on its own when one is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import click
import pluggy
import pytest

import localsearch.cli  # noqa: F401  (the real CLI is set up before any throwaway plugin exists)
from localsearch import hookimpl
from localsearch import plugins
from localsearch.config import Config
from localsearch.errors import ConfigError
from localsearch.plugins import describe_plugins, pm

BUILT_IN = {"searxng", "duckduckgo", "local", "http", "extract", "chunker",
            "sentence_transformers", "chroma", "llama_cpp", "openai_compatible", "evaluate", "follow_up"}
BUILT_IN_ENGINES = {"duckduckgo", "local", "searxng"}


@contextmanager
def registered(*named_plugins):
    """Register ``(name, plugin)`` pairs for the duration of a ``with`` block."""
    names = []
    try:
        for name, plugin in named_plugins:
            pm.register(plugin, name=name)
            names.append(name)
        yield
    finally:
        for name in names:
            pm.unregister(name=name)
        assert all(pm.get_plugin(name) is None for name in names)


def described(name):
    return next(p for p in describe_plugins() if p["name"] == name and "error" not in p)


class Engine:
    def __init__(self, name, tag=""):
        self.name, self.tag = name, tag

    def search(self, query, limit, pipeline):
        return []


# -- hook implementations that are no hook ----------------------------------------------------

class Misspelled:
    @hookimpl
    def fetch_pag(self, url, config):
        return "never called"

    @hookimpl
    def plan_queries(self, question):
        return ["from the misspelled plugin"]


class WrongArgument:
    @hookimpl
    def fetch_page(self, url, cfg):
        return "never called"

    @hookimpl
    def plan_queries(self, question):
        return ["from the wrong-argument plugin"]


class OptionalFutureHook:
    @hookimpl(optionalhook=True)
    def hook_of_a_later_version(self):
        return None


def test_a_misspelled_hook_is_reported_and_skipped_and_the_rest_of_the_plugin_works(home):
    with registered(("trap-misspelled", Misspelled())):
        entry = described("trap-misspelled")
        assert entry["problems"] == ["fetch_pag is not a localsearch hook (did you mean fetch_page?); it is ignored"]
        assert entry["hooks"] == ["plan_queries"]
        assert pm.hook.plan_queries(question="q", conversation=[], config=None) == ["from the misspelled plugin"]
        assert not isinstance(getattr(pm.hook, "fetch_pag", None), pluggy.HookCaller)  # skipped, not kept spec-less
    assert "trap-misspelled" not in plugins.hook_problems  # unregistering forgets its problems


def test_an_argument_the_hook_does_not_pass_skips_that_implementation_only(home):
    with registered(("trap-wrong-argument", WrongArgument())):  # pluggy alone refuses the whole plugin
        entry = described("trap-wrong-argument")
        assert len(entry["problems"]) == 1
        assert entry["problems"][0].startswith("fetch_page takes cfg, which the hook does not pass (it passes url, config)")
        assert entry["hooks"] == ["plan_queries"]
        assert pm.hook.plan_queries(question="q", conversation=[], config=None) == ["from the wrong-argument plugin"]


def test_an_optional_hook_of_a_later_version_is_not_a_problem(home):
    with registered(("trap-optional", OptionalFutureHook())):
        assert described("trap-optional")["problems"] == []


def test_built_ins_are_recognised_by_their_distribution(home):
    by_name = {p["name"]: p for p in describe_plugins() if "error" not in p}
    assert BUILT_IN <= set(by_name)
    assert all(by_name[name]["builtin"] and by_name[name]["package"] == "localsearch" for name in BUILT_IN)
    assert all(by_name[name]["problems"] == [] for name in BUILT_IN)
    with registered(("trap-outsider", OptionalFutureHook())):
        assert described("trap-outsider")["builtin"] is False


# -- search engines ---------------------------------------------------------------------------

class EngineNamedLikeABuiltIn:
    @hookimpl
    def register_search_engines(self, register):
        register(Engine("duckduckgo", tag="mine"))


class TwinEngine:
    def __init__(self, tag):
        self.tag = tag

    @hookimpl
    def register_search_engines(self, register):
        register(Engine("twin", tag=self.tag))


class RaisingEngines:
    @hookimpl
    def register_search_engines(self, register):
        register(Engine("half-registered"))
        raise RuntimeError("no engines today")


class FineEngine:
    @hookimpl
    def register_search_engines(self, register):
        register(Engine("fine"))


def test_an_engine_named_like_a_built_in_replaces_it(home):
    with registered(("trap-own-duckduckgo", EngineNamedLikeABuiltIn())):
        engines, warnings = plugins.search_engines()
        assert warnings == []
        assert getattr(engines["duckduckgo"], "tag", None) == "mine"
        assert BUILT_IN_ENGINES <= set(engines)
        assert type(engines["local"]).__module__.startswith("localsearch_plugins.")
        assert described("trap-own-duckduckgo")["notes"] == [
            "search engine 'duckduckgo' replaces the built-in one of plugin 'duckduckgo'"]
    engines, _ = plugins.search_engines()
    assert getattr(engines["duckduckgo"], "tag", None) is None  # the built-in is back


def test_two_plugins_registering_one_engine_name_the_first_wins_with_a_warning(home):
    with registered(("trap-twin-first", TwinEngine("first")), ("trap-twin-second", TwinEngine("second"))):
        engines, warnings = plugins.search_engines()
        assert engines["twin"].tag == "first"
        assert warnings == ["search engine 'twin' is registered by plugins 'trap-twin-first' and "
                            "'trap-twin-second'; the one of plugin 'trap-twin-first' is used"]
        assert warnings[0] in described("trap-twin-second")["problems"]


def test_a_raising_register_search_engines_is_a_warning_and_the_others_still_register(home):
    with registered(("trap-raising-engines", RaisingEngines()), ("trap-fine-engine", FineEngine())):
        engines, warnings = plugins.search_engines()
        assert "fine" in engines and BUILT_IN_ENGINES <= set(engines)
        assert "half-registered" not in engines  # a plugin that raised contributes nothing
        assert len(warnings) == 1
        assert "'trap-raising-engines'" in warnings[0] and "RuntimeError: no engines today" in warnings[0]
        assert warnings[0] in described("trap-raising-engines")["problems"]


# -- settings ---------------------------------------------------------------------------------

class Declares:
    def __init__(self, *settings):
        self.settings = settings

    @hookimpl
    def register_settings(self, register):
        for name, default in self.settings:
            register(name, default, "a throwaway setting")


class RaisingSettings:
    @hookimpl
    def register_settings(self, register):
        register("trap_half_setting", 1, "declared before the plugin raised")
        raise RuntimeError("no settings today")


def test_a_setting_declared_by_two_plugins_names_both_and_the_first_wins(home):
    with registered(("trap-settings-first", Declares(("twin_setting", 1))),
                    ("trap-settings-second", Declares(("twin_setting", "text")))):
        config = Config.load()
        assert config.twin_setting == 1
        assert [s["name"] for s in config.describe()].count("twin_setting") == 1
        assert config.warnings == ["setting 'twin_setting' is declared by plugins 'trap-settings-first' and "
                                   "'trap-settings-second'; the one of plugin 'trap-settings-first' is kept"]
        assert config.warnings[0] in described("trap-settings-second")["problems"]


def test_a_plugin_redeclaring_a_core_setting_keeps_the_core_one(home):
    with registered(("trap-core-setting", Declares(("top_k", "lots")))):
        config = Config.load()
        assert config.top_k == 6
        assert config.warnings == ["plugin 'trap-core-setting' declares setting 'top_k', which is a core setting; "
                                   "the core's is kept"]


def test_a_raising_register_settings_is_a_warning(home):
    with registered(("trap-raising-settings", RaisingSettings())):
        config = Config.load({"top_k": 2})
        assert config.top_k == 2 and config.chunk_chars == 600  # the other plugins' settings are there
        assert "trap_half_setting" not in {s["name"] for s in config.describe()}
        assert len(config.warnings) == 1
        assert "'trap-raising-settings'" in config.warnings[0]
        assert "RuntimeError: no settings today" in config.warnings[0]


def test_an_unknown_setting_in_the_config_file_is_a_warning(home):
    (home / "config.toml").write_text("nonsense_setting = 1\ntop_k = 3\n")
    config = Config.load()
    assert config.top_k == 3
    assert "nonsense_setting" not in {s["name"] for s in config.describe()}
    assert len(config.warnings) == 1 and "unknown setting 'nonsense_setting'" in config.warnings[0]
    assert config.replace(top_k=4).warnings == config.warnings


def test_a_malformed_value_of_a_plugin_setting_is_still_an_error(home):
    (home / "config.toml").write_text("chunk_chars = 'big'\n")
    with pytest.raises(ConfigError, match="chunk_chars"):
        Config.load()


# -- commands ---------------------------------------------------------------------------------

class RaisingCommands:
    @hookimpl
    def register_commands(self, cli):
        @cli.command(name="half")
        def half():
            """Added before the plugin raised."""

        raise RuntimeError("no commands today")


class AddsCommand:
    def __init__(self, name):
        self.name = name

    @hookimpl
    def register_commands(self, cli):
        @cli.command(name=self.name)
        def command():
            """A throwaway command."""
            click.echo(f"{self.name} ran")


def test_register_commands_reports_a_raising_plugin_and_keeps_the_others(home):
    group = click.Group("test-group")

    @group.command(name="config")
    def core_config():
        """A command that exists before the plugins add theirs."""

    with registered(("trap-raising-commands", RaisingCommands()), ("trap-adds-hello", AddsCommand("hello")),
                    ("trap-adds-config", AddsCommand("config"))):
        problems = plugins.register_commands(group)
        assert "hello" in group.commands and "half" not in group.commands
        assert group.commands["config"] is core_config
        raising = [p for p in problems if "'trap-raising-commands'" in p]
        assert len(raising) == 1 and "RuntimeError: no commands today" in raising[0]
        assert ("plugin 'trap-adds-config' adds a command 'config', which already exists; the existing one is kept"
                in problems)
        assert raising[0] in described("trap-raising-commands")["problems"]
        assert plugins.register_commands(group) == problems  # once per group


# -- real third-party plugins through the real CLI ----------------------------------------------

def install(site: Path, module: str, source: str, entry_point: str | None = None) -> None:
    """Install ``module`` as the third-party plugin ``entry_point`` (default: the module's name)."""
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    dist = module.replace("_", "-")
    info = site / f"{module}-0.1.dist-info"  # the folder's name part may not contain "-"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[localsearch]\n{entry_point or module} = {module}\n")


def run(home: Path, site: Path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALSEARCH_")}
    env.update(LOCALSEARCH_DATA_DIR=str(home / "data"), LOCALSEARCH_CONFIG=str(home / "config.toml"),
               PYTHONPATH=os.pathsep.join(p for p in [str(site), os.environ.get("PYTHONPATH", "")] if p))
    env.update(variables)
    return subprocess.run([sys.executable, "-m", "localsearch", *args], capture_output=True, text=True,
                          env=env, cwd=home, timeout=120)


def listed(home, site, **variables) -> dict[str, dict]:
    out = run(home, site, "plugins", "--json", **variables)
    assert out.returncode == 0, out.stderr
    return {p["name"]: p for p in json.loads(out.stdout) if "error" not in p}


MISSPELLED_PLUGIN = """
    import click
    from localsearch import hookimpl

    @hookimpl
    def fetch_pag(url, config):
        return None

    @hookimpl
    def register_commands(cli):
        @cli.command(name="trap-hello")
        def hello():
            click.echo("hello from the trap plugin")
"""

RAISING_COMMANDS_PLUGIN = """
    from localsearch import hookimpl

    @hookimpl
    def register_commands(cli):
        raise RuntimeError("no commands today")
"""


def settings_plugin(setting: str) -> str:
    return f"""
    from localsearch import hookimpl

    @hookimpl
    def register_settings(register):
        register({setting!r}, 1, "a setting of a third-party plugin")
"""


@pytest.fixture
def site(tmp_path):
    return tmp_path / "site"


def test_an_installed_plugin_with_a_misspelled_hook_is_listed_with_its_problem(home, site):
    install(site, "trap_misspelled", MISSPELLED_PLUGIN)
    helped = run(home, site, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "trap-hello" in helped.stdout
    assert run(home, site, "trap-hello").stdout.strip() == "hello from the trap plugin"
    entry = listed(home, site)["trap_misspelled"]
    assert entry["problems"] == ["fetch_pag is not a localsearch hook (did you mean fetch_page?); it is ignored"]
    assert entry["hooks"] == ["register_commands"]
    assert (entry["builtin"], entry["package"], entry["version"]) == (False, "trap-misspelled", "0.1")


def test_plugins_text_output_lists_problems(home, site):
    """Needs cli.py's ``plugins`` command to print each plugin's ``problems``."""
    install(site, "trap_misspelled", MISSPELLED_PLUGIN)
    out = run(home, site, "plugins")
    assert out.returncode == 0, out.stderr
    assert "fetch_pag is not a localsearch hook (did you mean fetch_page?)" in out.stdout


def test_a_raising_register_commands_is_a_warning_and_the_cli_still_works(home, site):
    """Needs cli.py to end with ``plugins.register_commands(cli)`` and print its problems to stderr
    as lines starting with "Warning:"."""
    install(site, "trap_misspelled", MISSPELLED_PLUGIN)
    install(site, "trap_raising_commands", RAISING_COMMANDS_PLUGIN)
    helped = run(home, site, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "trap-hello" in helped.stdout and "plugins" in helped.stdout
    warnings = [line for line in helped.stderr.splitlines() if line.startswith("Warning:")]
    assert any("'trap_raising_commands'" in line and "RuntimeError: no commands today" in line for line in warnings)
    assert run(home, site, "trap-hello").stdout.strip() == "hello from the trap plugin"
    problems = listed(home, site)["trap_raising_commands"]["problems"]
    assert any("register_commands failed" in problem for problem in problems)


def test_load_plugins_selects_third_party_plugins_and_keeps_the_built_ins(home, site):
    install(site, "trap_one", settings_plugin("trap_one_level"))
    install(site, "trap_two", settings_plugin("trap_two_level"))
    only_one = listed(home, site, LOCALSEARCH_LOAD_PLUGINS="trap_one")
    assert BUILT_IN <= set(only_one)
    assert "trap_one" in only_one and "trap_two" not in only_one

    none = listed(home, site, LOCALSEARCH_LOAD_PLUGINS="")
    assert BUILT_IN <= set(none) and not {"trap_one", "trap_two"} & set(none)

    everything = listed(home, site)
    assert BUILT_IN | {"trap_one", "trap_two"} <= set(everything)
    assert not everything["trap_one"]["builtin"] and everything["duckduckgo"]["builtin"]

    out = run(home, site, "plugins", "--json", LOCALSEARCH_LOAD_PLUGINS="trap_one,trap_typo")
    errors = {p["name"]: p["error"] for p in json.loads(out.stdout) if "error" in p}
    assert "not installed" in errors["trap_typo"]


def test_disable_plugins_turns_off_any_plugin_built_in_or_not(home, site):
    install(site, "trap_one", settings_plugin("trap_one_level"))
    install(site, "trap_two", settings_plugin("trap_two_level"))
    variables = {"LOCALSEARCH_DISABLE_PLUGINS": "duckduckgo, trap_two",
                 "LOCALSEARCH_LOAD_PLUGINS": "trap_one,trap_two"}  # disabling wins over selecting
    names = set(listed(home, site, **variables))
    assert "duckduckgo" not in names and "trap_two" not in names
    assert BUILT_IN - {"duckduckgo"} <= names and "trap_one" in names
    out = run(home, site, "config", "--json", **variables)
    assert out.returncode == 0, out.stderr
    settings = {s["name"] for s in json.loads(out.stdout)["settings"]}
    assert "ddgs_backend" not in settings and "trap_two_level" not in settings and "trap_one_level" in settings


def test_config_naming_a_setting_of_a_plugin_that_is_not_loaded_still_works(home, site):
    install(site, "trap_one", settings_plugin("trap_one_level"))
    install(site, "trap_two", settings_plugin("trap_two_level"))
    (home / "config.toml").write_text("trap_two_level = 5\ntop_k = 4\n")

    out = run(home, site, "config", "--json", LOCALSEARCH_LOAD_PLUGINS="trap_one")
    assert out.returncode == 0, out.stderr
    settings = {s["name"]: s for s in json.loads(out.stdout)["settings"]}
    assert settings["top_k"]["value"] == 4 and settings["top_k"]["origin"] == str(home / "config.toml")
    assert "trap_two_level" not in settings

    out = run(home, site, "config", "--json")
    assert out.returncode == 0, out.stderr
    assert {s["name"]: s["value"] for s in json.loads(out.stdout)["settings"]}["trap_two_level"] == 5


def test_a_third_party_entry_point_named_like_a_built_in_is_reported_not_silently_dropped(home, site):
    install(site, "trap_impostor", settings_plugin("trap_impostor_level"), entry_point="duckduckgo")
    out = run(home, site, "plugins", "--json")
    assert out.returncode == 0, out.stderr
    described_ = json.loads(out.stdout)
    loaded = [p for p in described_ if p["name"] == "duckduckgo" and "error" not in p]
    assert len(loaded) == 1 and loaded[0]["package"] == "localsearch" and loaded[0]["builtin"]
    refused = [p for p in described_ if p["name"] == "duckduckgo" and "error" in p]
    assert len(refused) == 1 and "trap-impostor" in refused[0]["error"] and "already taken" in refused[0]["error"]


def test_plugins_shows_each_plugins_settings_and_doctor_names_one_that_failed_to_load(tmp_path, site):
    install(site, "trap_settings_owner", settings_plugin("trap_owned_setting"))
    install(site, "trap_broken_import", "import no_such_module_anywhere\n")
    shown = listed(tmp_path, site)
    assert shown["trap_settings_owner"]["settings"] == ["trap_owned_setting"]
    assert "max_page_bytes" in shown["http"]["settings"] and shown["http"]["version"]
    doctor = run(tmp_path, site, "doctor", "--offline", "--json")
    check = next(c for c in json.loads(doctor.stdout) if c["name"] == "plugins")
    assert check["ok"] is False and "trap_broken_import failed to load" in check["detail"]
    assert "no_such_module_anywhere" in check["detail"] and "LOCALSEARCH_DISABLE_PLUGINS=trap_broken_import" in check["fix"]
    assert doctor.returncode == 1
