"""Shared fixtures: an offline test web on 127.0.0.1 and a private data/config directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # so `import testweb` works from any test

from testweb import TestWeb  # noqa: E402

# Models load from installed packages only; a test must never reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def web():
    with TestWeb() as server:
        yield server


@pytest.fixture(scope="session")
def session_home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


KEPT = ("LOCALSEARCH_DATA_DIR", "LOCALSEARCH_CONFIG", "LOCALSEARCH_ALLOWED_HOSTS",
        "LOCALSEARCH_RELIABILITY_OUT")  # the last: where the reliability report collects records


@pytest.fixture
def home(tmp_path, monkeypatch, web):
    """A fresh data directory and config file for one test, through the environment a user has.

    The test web is on loopback, which the URL policy refuses by default: it is allowed here
    by its exact address and port, as a user would allow an intranet host.
    """
    monkeypatch.setenv("LOCALSEARCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOCALSEARCH_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("LOCALSEARCH_ALLOWED_HOSTS", f"{web.host}:{web.port}")
    for key in list(os.environ):
        if key.startswith("LOCALSEARCH_") and key not in KEPT:
            monkeypatch.delenv(key)
    # A test's `ask` leaves no server behind (tests of that start one on purpose).
    monkeypatch.setenv("LOCALSEARCH_START_SERVER", "false")
    # The bundled model stands in for a model the user chose, where a test runs the model at all.
    monkeypatch.setenv("LOCALSEARCH_BUNDLED_MODEL", "true")
    return tmp_path


@pytest.fixture
def make_pipeline(home, web):
    """Build a Pipeline against the test web with settings a test picks."""
    from localsearch.pipeline import Pipeline

    def make(**overrides):
        settings = {"engines": ["searxng"], "searxng_url": web.url, "llm": False, "bundled_model": True,
                    "search_timeout": 5.0, "fetch_timeout": 3.0}
        settings.update(overrides)
        return Pipeline(**settings)

    return make


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.passed_call = report.passed  # read by the reliability fixture at teardown
    return report


@pytest.fixture
def reliability(request):
    """Records what a ``@pytest.mark.reliability`` test tried (see tests/reliability.py); kept
    for docs/reliability.md only when the test passes."""
    from reliability import Recorder

    assert request.node.get_closest_marker("reliability"), "mark the test @pytest.mark.reliability"
    recorder = Recorder(request.node.nodeid)
    yield recorder
    if getattr(request.node, "passed_call", False):
        recorder.flush()
