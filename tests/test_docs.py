"""The docs are tests: the hook reference must match the hookspecs, the protocol reference the
protocol module."""

import inspect
import re
from pathlib import Path

import pytest

from localsearch import hookspecs

ROOT = Path(__file__).resolve().parent.parent


def _hookspecs():
    return [fn for _, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "localsearch_spec")]


def test_every_hook_is_in_the_reference_with_its_arguments():
    reference = (ROOT / "docs" / "plugin-hooks.md").read_text(encoding="utf-8")
    headings = dict(re.findall(r"^## (\w+)\(([^)]*)\)$", reference, re.M))
    for fn in _hookspecs():
        arguments = ", ".join(inspect.signature(fn).parameters)
        assert fn.__name__ in headings, f"hook {fn.__name__} is missing from docs/plugin-hooks.md"
        assert headings[fn.__name__] == arguments, f"arguments of {fn.__name__} differ in docs/plugin-hooks.md"
    assert set(headings) <= {fn.__name__ for fn in _hookspecs()}, "docs describe a hook that does not exist"


def test_every_hook_states_its_call_behaviour():
    reference = (ROOT / "docs" / "plugin-hooks.md").read_text(encoding="utf-8")
    for fn in _hookspecs():
        kind = "firstresult" if fn.localsearch_spec.get("firstresult") else "all"
        assert fn.__doc__ and ("firstresult" in fn.__doc__) == (kind == "firstresult"), fn.__name__
        section = reference.split(f"## {fn.__name__}(")[1].split("\n## ")[0]
        assert f"Call behaviour: **{kind}**" in section, fn.__name__
        assert inspect.cleandoc(fn.__doc__) in section, f"the docstring of {fn.__name__} differs in the docs"


def test_the_reference_is_what_the_generator_writes():
    import runpy

    generator = runpy.run_path(str(ROOT / "scripts" / "hook_reference.py"))
    current = (ROOT / "docs" / "plugin-hooks.md").read_text(encoding="utf-8")
    assert current == generator["render"](current), "run scripts/hook_reference.py to update the docs"


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", readme, re.S)
    assert "scripts/install.sh" in commands[0] and "localsearch ask" in commands[0]
    assert "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1].strip().splitlines()[-1].strip() in ci, ".ci/run must run the README's test command"


def test_the_protocol_reference_is_what_the_generator_writes():
    import runpy

    generator = runpy.run_path(str(ROOT / "scripts" / "protocol_reference.py"))
    current = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert current == generator["render"](current), "run scripts/protocol_reference.py to update docs/protocol.md"


def test_the_protocol_doc_matches_what_the_session_accepts():
    """Every request type the doc lists is one the checker takes (with the fields the doc
    marks required), and the doc names the version the code speaks."""
    from localsearch import protocol

    reference = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert f"Protocol version: **{protocol.PROTOCOL_VERSION}**" in reference
    documented = re.findall(r"^### `(\w+)`$", reference, re.M)
    assert documented == list(protocol.REQUESTS)
    samples = {str: "x", bool: True, list: [], dict: {}}
    for kind in documented:
        section = reference.split(f"### `{kind}`\n", 1)[1].split("\n### ", 1)[0]
        required = re.findall(r"^\| `(\w+)` \| \w+ \| yes \|", section, re.M)
        request = {"id": "1", "type": kind}
        for name in required:
            field = protocol.REQUESTS[kind][name]
            request[name] = {"url": "https://a.example/", "html": "<p>x</p>"} if name == "page" else samples[field.kind]
        if kind == "index":
            request["urls"] = ["https://a.example/"]
        if kind == "delete":  # one of its two fields, neither required alone
            request["all"] = True
        assert protocol.check_request(request)[1] == kind
        with pytest.raises(protocol.ProtocolError, match="unknown field"):
            protocol.check_request({**request, "surplus": 1})
    listed = re.findall(r"^- `(\w+)`: ", reference.split("### Messages back", 1)[1], re.M)
    assert listed == list(protocol.MESSAGE_TYPES)


def test_the_plugin_tutorials_code_runs_and_its_test_passes(tmp_path):
    """docs/writing-plugins.md's plugin and its test, written out as a package and run with
    pytest as a plugin author would."""
    import os
    import re
    import subprocess
    import sys

    text = (ROOT / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    module = next(b for b in blocks if "class BookmarksEngine" in b)
    test = next(b for b in blocks if "def test_" in b)
    package = tmp_path / "localsearch-bookmarks"
    (package / "tests").mkdir(parents=True)
    (package / "localsearch_bookmarks.py").write_text(module)
    (package / "conftest.py").write_text("")
    (package / "tests" / "test_bookmarks.py").write_text(test)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LOCALSEARCH_")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package)],
                          cwd=package, env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout


def test_the_reliability_report_lists_every_reliability_test_and_how_to_run_it():
    """docs/reliability.md is generated from the tests marked reliability: a test added or renamed
    since it was written is missing from it (run scripts/reliability_report.py)."""
    import subprocess
    import sys

    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "reliability",
                                "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    tests = {line.split("[")[0] for line in collected.stdout.splitlines() if "::" in line}
    assert len(tests) >= 5, collected.stdout[-2000:]
    report = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    assert "Generated by `.venv/bin/python scripts/reliability_report.py`" in report
    missing = sorted(test for test in tests if f'`.venv/bin/python -m pytest "{test}' not in report)
    assert not missing, f"run scripts/reliability_report.py: not in docs/reliability.md: {missing}"
    assert "## Failures" not in report, "the report was written from a run with failures"
