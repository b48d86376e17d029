"""Write the Firefox build of the extension: the same files, with a manifest Firefox reads.

    python scripts/firefox_extension.py [OUT]     (default: build/firefox)

Chromium loads extension/ as it is. Firefox has no side panel API and runs an MV3 background
as a page, so its manifest names the background script, opens panel.html as the sidebar, and
binds the shortcut to the sidebar; the code is shared (background.js falls back to
`browser.sidebarAction` when `chrome.sidePanel` is missing). `web-ext lint` checks the result
(tests/test_extension_files.py).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "extension"
FIREFOX_MIN_VERSION = "140.0"  # the ESR Debian ships; data_collection_permissions came in 140


def firefox_manifest(manifest: dict) -> dict:
    firefox = {k: v for k, v in manifest.items() if k not in ("key", "side_panel")}
    firefox["permissions"] = [p for p in manifest["permissions"] if p != "sidePanel"]
    firefox["background"] = {"scripts": [manifest["background"]["service_worker"]], "type": "module"}
    firefox["sidebar_action"] = {"default_panel": manifest["side_panel"]["default_path"],
                                 "default_title": manifest["action"]["default_title"], "open_at_install": False}
    firefox["commands"] = {"_execute_sidebar_action": manifest["commands"]["open-panel"]}
    # What leaves the browser goes to the user's own machine (the native host), never to us.
    gecko = dict(manifest["browser_specific_settings"]["gecko"], strict_min_version=FIREFOX_MIN_VERSION,
                 data_collection_permissions={"required": ["none"]})
    firefox["browser_specific_settings"] = {"gecko": gecko}
    return firefox


def write(out: Path) -> Path:
    if out.exists() and any(out.iterdir()):
        # Only a build this script wrote is replaced: never a folder someone named by mistake.
        try:
            ours = "sidebar_action" in json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            ours = False
        if not ours:
            raise SystemExit(f"{out} is not empty and holds no Firefox build of the extension: choose another folder")
        shutil.rmtree(out)
    elif out.exists():
        out.rmdir()
    shutil.copytree(SOURCE, out)
    manifest = json.loads((SOURCE / "manifest.json").read_text(encoding="utf-8"))
    (out / "manifest.json").write_text(json.dumps(firefox_manifest(manifest), indent=2) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    print(write(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "firefox"))
