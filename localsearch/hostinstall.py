"""``localsearch install-host`` / ``uninstall-host``: registering the native-messaging host with
the user's browsers.

A browser finds a host by its manifest (name, absolute path of the program, ``stdio``, and the
extension ids allowed to call it) in a per-user folder (Linux, macOS) or a registry key
(Windows). The program is a small launcher, written into the data directory, that runs this
installation's Python with the ``LOCALSEARCH_*`` settings of the shell that installed it (a
browser started from the desktop has none of them). What was written is recorded, so that
uninstalling removes exactly that, and installing again after the installation moved repairs
the paths.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path

from .config import Config
from .errors import LocalsearchError
from .host import EXTENSION_ID, GECKO_ID

__all__ = ["HOST_NAME", "BROWSERS", "install_host", "uninstall_host", "manifest_folder", "installed_browsers"]

HOST_NAME = "org.localsearch.host"
# name: (Linux folder under ~/.config, macOS folder under ~/Library/Application Support,
#        Windows registry key under HKCU\Software, programs that run it)
BROWSERS = {
    "chrome": ("google-chrome", "Google/Chrome", r"Google\Chrome", ("google-chrome", "google-chrome-stable")),
    "chromium": ("chromium", "Chromium", r"Chromium", ("chromium", "chromium-browser")),
    "edge": ("microsoft-edge", "Microsoft Edge", r"Microsoft\Edge", ("microsoft-edge", "microsoft-edge-stable")),
    "brave": ("BraveSoftware/Brave-Browser", "BraveSoftware/Brave-Browser", r"Google\Chrome", ("brave-browser",)),
    "vivaldi": ("vivaldi", "Vivaldi", r"Google\Chrome", ("vivaldi", "vivaldi-stable")),
    "firefox": ("", "Mozilla", r"Mozilla", ("firefox", "firefox-esr")),
}


def _config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def manifest_folder(browser: str) -> Path:
    """Where ``browser`` looks for this user's native-messaging host manifests (Linux, macOS;
    on Windows, where ours is kept for the registry key to name)."""
    linux, mac, _, _ = BROWSERS[browser]
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / mac / "NativeMessagingHosts"
    if sys.platform == "win32":
        return Path(Config.load().data_dir) / "native-host" / browser
    if browser == "firefox":
        return Path.home() / ".mozilla" / "native-messaging-hosts"
    return _config_home() / linux / "NativeMessagingHosts"


def installed_browsers() -> list[str]:
    """The browsers this user has: one whose program is on PATH or whose profile folder exists."""
    found = []
    for name, (_, _, _, programs) in BROWSERS.items():
        profile = manifest_folder(name).parent
        if any(shutil.which(program) for program in programs) or (sys.platform != "win32" and profile.is_dir()):
            found.append(name)
    return found


def _launcher(folder: Path) -> Path:
    """Write the program the browsers start: this Python, this package, the installing
    shell's LOCALSEARCH_* settings."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in sorted(os.environ.items()) if k.startswith("LOCALSEARCH_")}
    if sys.platform == "win32":
        path = folder / "localsearch-host.bat"
        # set "NAME=value": & | < > in a value stay text; % is doubled, else it would expand.
        lines = ["@echo off", *(f'set "{k}={v.replace("%", "%%")}"' for k, v in settings.items()),
                 f'"{sys.executable}" -m localsearch host %*']
        path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
        return path
    path = folder / "localsearch-host"
    lines = ["#!/bin/sh", "# Written by `localsearch install-host`: the browser starts this to reach localsearch.",
             *(f"export {k}={shlex.quote(v)}" for k, v in settings.items()),
             f'exec {shlex.quote(sys.executable)} -m localsearch host "$@"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o700)
    return path


def _manifest(browser: str, launcher: Path, extra_ids: list[str]) -> dict:
    manifest = {"name": HOST_NAME, "description": "localsearch: a private, local AI answer engine",
                "path": str(launcher), "type": "stdio"}
    if browser == "firefox":
        manifest["allowed_extensions"] = [GECKO_ID, *(i for i in extra_ids if "@" in i or i.startswith("{"))]
    else:
        ids = [EXTENSION_ID, *(i for i in extra_ids if len(i) == 32 and i.isalpha() and i.islower())]
        manifest["allowed_origins"] = [f"chrome-extension://{i}/" for i in ids]
    return manifest


def _record_path(config: Config) -> Path:
    return Path(config.data_dir) / "native-host" / "installed.json"


def install_host(browsers: list[str] | None = None, config: Config | None = None) -> list[dict]:
    """Write the launcher and a manifest for each of ``browsers`` (default: those installed);
    returns what was written: ``browser``, ``manifest`` and, on Windows, ``registry``."""
    config = config or Config.load()
    unknown = [b for b in browsers or [] if b not in BROWSERS]
    if unknown:
        raise LocalsearchError(f"unknown browser {unknown[0]!r} (known: {', '.join(BROWSERS)})")
    browsers = browsers or installed_browsers()
    if not browsers:
        raise LocalsearchError(f"no browser found (looked for {', '.join(BROWSERS)}); name one with --browser")
    launcher = _launcher(Path(config.data_dir) / "native-host")
    written = []
    for browser in browsers:
        folder = manifest_folder(browser)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{HOST_NAME}.json"
        path.write_text(json.dumps(_manifest(browser, launcher, config.host_extensions), indent=2) + "\n",
                        encoding="utf-8")
        entry = {"browser": browser, "manifest": str(path)}
        if sys.platform == "win32":
            entry["registry"] = _register(browser, path)
        written.append(entry)
    record = _record_path(config)
    earlier = _read_record(record)
    kept = [e for e in earlier["manifests"] if e["manifest"] not in {w["manifest"] for w in written}]
    record.write_text(json.dumps({"launcher": str(launcher), "manifests": kept + written}, indent=2) + "\n",
                      encoding="utf-8")
    return written


def _read_record(record: Path) -> dict:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and isinstance(data.get("manifests"), list) else {"manifests": []}
    except (OSError, ValueError):
        return {"manifests": []}


def uninstall_host(config: Config | None = None) -> list[str]:
    """Remove what ``install_host`` wrote (manifests still naming our host, registry keys
    still pointing at them, the launcher); returns what was removed."""
    config = config or Config.load()
    record = _record_path(config)
    data = _read_record(record)
    folder = record.parent
    # Only a launcher of ours, where install_host writes it: the record cannot name another file.
    launcher = next((p for p in (folder / "localsearch-host", folder / "localsearch-host.bat")
                     if str(p) == data.get("launcher")), None)
    removed = []
    for entry in data["manifests"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("manifest"), str):
            continue
        path = Path(entry["manifest"])
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(manifest, dict) or manifest.get("name") != HOST_NAME or launcher is None \
                or manifest.get("path") != str(launcher):
            continue  # rewritten since by another installation (or something else): not ours to remove
        if entry.get("registry"):
            _unregister(entry["registry"], path)
        path.unlink()
        removed.append(str(path))
    if launcher is not None and launcher.exists():
        launcher.unlink()
        removed.append(str(launcher))
    record.unlink(missing_ok=True)
    return removed


def _register(browser: str, manifest: Path) -> str:
    """Windows: the per-user registry key whose default value names the manifest."""
    import winreg  # type: ignore[import-not-found]

    key = rf"Software\{BROWSERS[browser][2]}\NativeMessagingHosts\{HOST_NAME}"
    with winreg.CreateKey(winreg.HKEY_CURRENT_USER, key) as handle:
        winreg.SetValueEx(handle, "", 0, winreg.REG_SZ, str(manifest))
    return key


def _unregister(key: str, manifest: Path) -> None:
    import winreg  # type: ignore[import-not-found]

    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key) as handle:
            if winreg.QueryValueEx(handle, "")[0] != str(manifest):
                return  # another installation's now
        winreg.DeleteKey(winreg.HKEY_CURRENT_USER, key)
    except OSError:
        pass
