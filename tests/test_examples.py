"""The example plugin packages install with pip as a user's would, and localsearch finds them
through their entry points (their own tests, under examples/, run with the rest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {
    "localsearch-keyword-planner": ("keyword_planner", {"plan_queries", "register_settings", "register_commands"}),
    "localsearch-folder-search": ("folder_search", {"register_search_engines", "fetch_page", "register_settings"}),
    "localsearch-domain-filter": ("domain_filter", {"filter_results", "register_settings"}),
}


@pytest.mark.parametrize("folder", sorted(EXAMPLES))
def test_an_example_builds_installs_and_loads_as_a_plugin(folder, tmp_path):
    source = ROOT / "examples" / folder
    assert (source / "README.md").is_file() and list((source / "tests").glob("test_*.py"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "wheels"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "wheels").glob("*.whl"))
    name, hooks = EXAMPLES[folder]
    with zipfile.ZipFile(wheel) as archive:
        entry_points = next(n for n in archive.namelist() if n.endswith("entry_points.txt"))
        assert f"[localsearch]\n{name} = " in archive.read(entry_points).decode()
        assert not any(n.startswith(("tests/", "conftest")) for n in archive.namelist())  # the module only
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                                str(tmp_path / "site"), str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LOCALSEARCH_")}
    environment["PYTHONPATH"] = str(tmp_path / "site")
    listed = subprocess.run([sys.executable, "-m", "localsearch", "plugins", "--json"], env=environment,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    plugin = next(p for p in json.loads(listed.stdout) if p["name"] == name)
    assert not plugin["builtin"] and set(plugin["hooks"]) == hooks and plugin["problems"] == []
    assert plugin["version"] == "0.1.0"
