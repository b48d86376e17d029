"""The extension's files as they are in the repository: they load unpacked with no build step
and fetch nothing, ask only for the permissions they use, make a Firefox build that `web-ext
lint` passes, and build citation links (run in Node, the browser's own JavaScript engine
family) that point at the quoted passage."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "extension"
WEB_EXT = ROOT / "node_modules" / ".bin" / "web-ext"
MANIFEST = json.loads((EXTENSION / "manifest.json").read_text())
SCRIPTS = {path: path.read_text() for path in EXTENSION.rglob("*.js")}
PAGES = {path: path.read_text() for path in EXTENSION.rglob("*.html")}

# The APIs that need each permission the manifest asks for (none is asked for unused).
PERMISSION_USES = {"nativeMessaging": "chrome.runtime.connectNative", "sidePanel": "chrome.sidePanel",
                   "contextMenus": "chrome.contextMenus", "scripting": "chrome.scripting.executeScript",
                   "storage": "chrome.storage.session"}  # memory only: the conversation outlives the worker


def run_module(script: str) -> dict:
    """Run ``script`` as an ES module in Node beside the extension's files; the JSON it prints."""
    run = subprocess.run(["node", "--input-type=module", "-e", script], cwd=EXTENSION,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_every_file_the_pages_load_is_in_the_repository_and_nothing_comes_from_elsewhere():
    for page, text in PAGES.items():
        for reference in re.findall(r'(?:src|href)="([^"]+)"', text):
            assert not re.match(r"\w+:", reference), f"{page.name} loads {reference} from elsewhere"
            assert (page.parent / reference).is_file(), f"{page.name}: {reference} is missing"
    for script, text in SCRIPTS.items():
        for imported in re.findall(r'^import .* from "([^"]+)";', text, flags=re.M):
            assert imported.startswith("./"), f"{script.name} imports {imported}: only files beside it"
            assert (script.parent / imported).resolve().is_file(), f"{script.name}: {imported} is missing"
        assert not re.search(r"\beval\(|new Function\(|innerHTML|outerHTML\s*=|insertAdjacentHTML|document\.write|"
                             r"createContextualFragment|DOMParser", text), f"{script.name} runs or injects text"
    assert not (EXTENSION / "node_modules").exists() and not (EXTENSION / "package.json").exists()


def test_the_manifest_asks_only_for_the_permissions_the_code_uses():
    code = "\n".join(SCRIPTS.values())
    assert set(MANIFEST["permissions"]) == set(PERMISSION_USES)
    for permission, use in PERMISSION_USES.items():
        assert use in code, f"{permission} is asked for but {use} is never called"
    # A panel that stays open across tabs reads the page the user asks about: a click in it does
    # not grant activeTab, so web pages (and only those) are the host permissions.
    assert MANIFEST["host_permissions"] == ["http://*/*", "https://*/*"]
    assert "chrome.storage.local" not in code and "chrome.storage.sync" not in code  # nothing kept on disk
    for unused in ("tabs", "history", "cookies", "webRequest", "<all_urls>"):
        assert unused not in MANIFEST["permissions"] and f"chrome.{unused}." not in code.replace("chrome.tabs.query", "") \
            .replace("chrome.tabs.get", "")
    assert MANIFEST["manifest_version"] == 3 and MANIFEST["side_panel"]["default_path"] == "panel.html"
    assert MANIFEST["commands"]["open-panel"]["suggested_key"]["default"]
    assert 'commands.onCommand' in SCRIPTS[EXTENSION / "background.js"]
    assert "autofocus" in PAGES[EXTENSION / "panel.html"]  # the shortcut opens it ready to type


def test_the_firefox_build_passes_web_ext_lint(tmp_path):
    build = subprocess.run([sys.executable, str(ROOT / "scripts" / "firefox_extension.py"), str(tmp_path / "ff")],
                           capture_output=True, text=True, check=True)
    out = Path(build.stdout.strip())
    firefox = json.loads((out / "manifest.json").read_text())
    assert firefox["sidebar_action"]["default_panel"] == "panel.html" and "side_panel" not in firefox
    assert firefox["background"] == {"scripts": ["background.js"], "type": "module"}
    assert "_execute_sidebar_action" in firefox["commands"] and "key" not in firefox
    assert WEB_EXT.exists(), "web-ext is not installed: npm ci (scripts/install.sh does)"
    lint = subprocess.run([str(WEB_EXT), "lint", "--source-dir", str(out), "--output", "json", "--no-config-discovery"],
                          capture_output=True, text=True, timeout=300)
    report = json.loads(lint.stdout[lint.stdout.index("{"):])
    assert report["errors"] == [], report["errors"]
    # What may be left: the side panel calls Firefox never reaches (guarded in background.js),
    # and Firefox for Android, which has no sidebar, not knowing a key.
    allowed = {("UNSUPPORTED_API", "sidePanel."), ("KEY_FIREFOX_ANDROID_UNSUPPORTED_BY_MIN_VERSION", "")}
    for warning in report["warnings"]:
        assert any(warning["code"] == code and text in warning["message"] for code, text in allowed), warning


NODE_CHECKS = r"""
import { answerPieces, fragmentUrl, citationHref, safeUrl } from "./lib/citations.js";
const out = {};
out.long = fragmentUrl("https://a.example/p", "The lighthouse was first lit on 9 October 1887, by keeper Ada-Lane, after years of work.");
out.short = fragmentUrl("https://a.example/p#top", "“first lit in 1887.”");
out.dashes = fragmentUrl("https://a.example/p", "— — — — — and then some more words here, five of them");
out.javascript = fragmentUrl("javascript:alert(1)", "x");
out.safe = [safeUrl("file:///etc/passwd"), safeUrl("https://a.example/")];
// As the host writes them: markers after supported sentences only; a sentence keeps its code.
const citations = [
  { n: 1, sentence: "It was lit in 1887.", url: "https://a.example/one", quote: "first lit in 1887", supported: true },
  { n: 1, sentence: "Count from `a[0]` up.", url: "https://a.example/one", quote: "start at zero", supported: true },
  { n: 1, sentence: "It is 41 metres tall.", url: "https://a.example/one", quote: "41 metres tall", supported: true },
  { n: 2, sentence: "It is painted blue.", url: "https://b.example/two", quote: "white tower", supported: false,
    reason: "the source never mentions blue" },
];
const sources = [{ n: 1, url: "https://a.example/one" }, { n: 2, url: "https://b.example/two" }];
const text = "It was lit in 1887 [1]. Count from `a[0]` up [1]. It is 41 metres tall [1][9]. Also [2]. It is painted blue. It has no keeper.";
const pieces = answerPieces(text, citations, sources, ["It is painted blue.", "It has no keeper."]);
out.pieces = pieces.map((p) => p.kind === "cite" ? ["cite", p.n, citationHref(p)] : [p.kind, p.text, p.unsupported || ""]);
console.log(JSON.stringify(out));
"""


def test_citation_links_point_at_the_quoted_passage_and_only_at_sources():
    out = run_module(NODE_CHECKS)
    # A long quote by its first and last words, with - , & escaped; a page's own fragment kept.
    assert out["long"] == ("https://a.example/p#:~:text=The%20lighthouse%20was%20first%20lit,"
                           "Ada%2DLane%2C%20after%20years%20of%20work")
    assert out["short"] == "https://a.example/p#top:~:text=first%20lit%20in%201887"
    assert out["dashes"] == "https://a.example/p"  # no words to match at one end: the page itself
    assert out["javascript"] is None and out["safe"] == [None, "https://a.example/"]
    pieces = out["pieces"]
    cites = [p for p in pieces if p[0] == "cite"]
    # Each [1] goes to the quote of its own sentence (code and all); [9] names no source and is
    # no link; a [2] no citation's sentence holds links its source alone.
    assert cites == [["cite", 1, "https://a.example/one#:~:text=first%20lit%20in%201887"],
                     ["cite", 1, "https://a.example/one#:~:text=start%20at%20zero"],
                     ["cite", 1, "https://a.example/one#:~:text=41%20metres%20tall"],
                     ["cite", 2, "https://b.example/two"]]
    assert ["code", "a[0]", ""] in pieces
    # The sentences no source supports are marked, each with why; the others are not.
    marked = [(p[1].strip(), p[2]) for p in pieces if p[0] != "cite" and p[2]]
    assert marked == [("It is painted blue.", "the source never mentions blue"),
                      ("It has no keeper.", "no source supports it")], pieces


FAILURE_CHECKS = r"""
import { describeFailure } from "./lib/host.js";
import { whyUnreadable } from "./lib/page.js";
const said = [
  "Specified native messaging host not found.", "Access to the specified native messaging host is forbidden.",
  "Native host has exited.", "Error when communicating with the native messaging host.",
  "No such native application org.localsearch.host", "something new",
].map((message) => describeFailure(message, "abcd"));
const pages = ["chrome://settings/", "https://chromewebstore.google.com/detail/x", "https://addons.mozilla.org/a",
               "file:///home/me/a.html", undefined, "https://example.org/"].map(whyUnreadable);
console.log(JSON.stringify({ said, pages }));
"""


def test_each_way_the_host_cannot_be_reached_gets_what_to_run_and_closed_pages_are_named():
    out = run_module(FAILURE_CHECKS)
    kinds = [(s["kind"], s["commands"][0]) for s in out["said"]]
    assert kinds == [("missing", "localsearch install-host"),
                     ("forbidden", "LOCALSEARCH_HOST_EXTENSIONS=abcd localsearch install-host"),
                     ("exited", "localsearch doctor"), ("broken", "localsearch doctor"),
                     ("missing", "localsearch install-host --browser firefox"), ("unknown", "localsearch doctor")]
    assert all(s["summary"] and s["message"] for s in out["said"])
    closed, store, amo, local, none, web = out["pages"]
    assert "browser pages" in closed and "extension stores" in store and "extension stores" in amo
    assert "http and https" in local and none and web == ""


@pytest.mark.parametrize("path", sorted(str(p.relative_to(EXTENSION)) for p in SCRIPTS))
def test_each_module_parses(path):
    run = subprocess.run(["node", "--check", "--input-type=module"], input=(EXTENSION / path).read_text(),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


STATE_CHECKS = r"""
import { apply, begin, followUp, initialState, lost, reopen, restored } from "./lib/state.js";
const out = {};
const answered = (state, id, question, data) => {
  begin(state, { id, question });
  apply(state, { id, type: "answer", data });
  apply(state, { id, type: "done", data: {} });
};
// History on: the follow-up names the conversation the host keeps.
const kept = initialState();
answered(kept, "a", "When was it lit?", { answer: "In 1887 [1].", conversation_id: "c1", turn: { question: "When was it lit?", answer: "In 1887 [1].", reply: "r" } });
out.kept = followUp(kept);
// History off: the answers carry no id, so the turns themselves go with the follow-up.
const off = initialState();
answered(off, "a", "When was it lit?", { answer: "In 1887 [1].", turn: { question: "When was it lit?", answer: "In 1887 [1].", reply: "r" } });
answered(off, "b", "How tall?", { answer: "41 m [1]." });
out.off = followUp(off);
// Reopened from the history, then asked with the history off: the turns again.
const again = initialState();
reopen(again, { id: "c9", turns: [{ position: 1, question: "Q1", answer: { answer: "A1" } }] });
out.reopened = followUp(again);
answered(again, "c", "Q2", { answer: "A2" });
out.reopenedThenOff = followUp(again);
// A message of an earlier question is not folded into the current one.
const current = initialState();
begin(current, { id: "new", question: "Q" });
out.foreign = apply(current, { id: "old", type: "answer_delta", data: { text: "x" } });
// The host lost mid-answer, and a worker restarted mid-answer: both say so and keep what was shown.
apply(current, { id: "new", type: "stage_start", data: { stage: "search" } });
lost(current, { kind: "exited", summary: "The localsearch host stopped." });
out.lost = [current.current.status, current.current.stages.length, current.connection.status];
const restarted = initialState();
begin(restarted, { id: "r", question: "Q" });
const fresh = initialState();
restored(fresh, JSON.parse(JSON.stringify(restarted)));
out.restored = [fresh.current.status, fresh.current.question, fresh.connection.status];
console.log(JSON.stringify(out));
"""


def test_the_state_sends_follow_ups_the_host_can_answer_and_says_what_was_lost():
    out = run_module(STATE_CHECKS)
    assert out["kept"] == {"conversation_id": "c1"}
    assert out["off"] == {"conversation": [{"question": "When was it lit?", "answer": "In 1887 [1].", "reply": "r"},
                                           {"question": "How tall?", "answer": "41 m [1]."}]}
    assert out["reopened"] == {"conversation_id": "c9"}
    assert out["reopenedThenOff"] == {"conversation": [{"question": "Q1", "answer": "A1"},
                                                       {"question": "Q2", "answer": "A2"}]}
    assert out["foreign"] is False
    assert out["lost"] == ["lost", 1, "failed"]
    assert out["restored"] == ["lost", "Q", "idle"]


def test_the_firefox_build_never_replaces_a_folder_it_did_not_write(tmp_path):
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "todo.txt").write_text("keep me")
    refused = subprocess.run([sys.executable, str(ROOT / "scripts" / "firefox_extension.py"), str(precious)],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "holds no Firefox build" in refused.stderr
    assert (precious / "todo.txt").read_text() == "keep me"
    for _ in range(2):  # its own build it replaces
        built = subprocess.run([sys.executable, str(ROOT / "scripts" / "firefox_extension.py"), str(tmp_path / "ff")],
                               capture_output=True, text=True)
        assert built.returncode == 0, built.stderr


IMAGE_CHECKS = r"""
import { citationHref } from "./lib/citations.js";
import { downloadName, imageFields, imageOutcome, imageRequest, toBase64, toolMenuId, toolOfMenu,
         MAX_IMAGE_CHARS } from "./lib/image.js";
const bytes = new Uint8Array(200000).map((_, i) => (i * 7) % 256);
const roundTrip = Buffer.from(toBase64(bytes.buffer), "base64").equals(Buffer.from(bytes));
const fields = (src, data) => { try { return imageFields(src, data); } catch (error) { return error.message; } };
const big = "A".repeat(MAX_IMAGE_CHARS + 4);
const text = imageOutcome({ type: "image_text", url: "https://a.example/x.png" }, [
  { type: "image_text", data: { text: "one\ntwo", lines: [{}, {}], problems: [] } }, { type: "done", data: {} }]);
const made = imageOutcome({ type: "image_run", tool: "upscale", url: "https://a.example/x.png" }, [
  { type: "image_result", data: { type: "image/png", image: "iVBO", width: 8, height: 4 } }, { type: "done", data: {} }]);
const failed = imageOutcome({ type: "image_text" }, [{ type: "error", data: { message: "not an image" } }]);
console.log(JSON.stringify({
  roundTrip,
  small: fields("https://a.example/x.png", "AAAA"), inline: fields("data:image/png;base64,AAAA", "AAAA"),
  large: fields("https://a.example/x.png", big), largeBlob: fields("blob:https://a.example/1", big),
  unread: fields("blob:https://a.example/1", null),
  textRequest: imageRequest("image-text", { image: "AAAA" }, "https://a.example/page"),
  toolRequest: imageRequest(toolMenuId("upscale"), { url: "https://a.example/x.png" }, "https://a.example/page"),
  notTool: toolOfMenu("ask-about-selection"), text, made, failed,
  names: [downloadName("https://a.example/img/Chart%201.PNG?v=2", "upscale"), downloadName("", null)],
  imageCite: citationHref({ citation: { url: "https://a.example/p", image: "https://a.example/i.png", quote: "23:40" } }),
  inlineCite: citationHref({ citation: { url: "https://a.example/p", image: "data:image/png", quote: "23:40" } }),
}));
"""


def test_images_from_the_menu_travel_as_bytes_within_the_limit_or_by_address():
    out = run_module(IMAGE_CHECKS)
    assert out["roundTrip"]
    assert out["small"] == {"image": "AAAA", "url": "https://a.example/x.png"}
    assert out["inline"] == {"image": "AAAA", "url": ""}
    assert out["large"] == {"url": "https://a.example/x.png"}, "too large to send: the host fetches it"
    assert out["largeBlob"] == "The image is too large to send to localsearch (over 15 MB)."
    assert "cannot be read" in out["unread"]
    assert out["textRequest"] == {"type": "image_text", "image": "AAAA", "page_url": "https://a.example/page"}
    assert out["toolRequest"] == {"type": "image_run", "tool": "upscale", "url": "https://a.example/x.png"}
    assert out["notTool"] is None
    assert out["text"] == {"kind": "text", "tool": None, "source": "https://a.example/x.png", "status": "done",
                           "text": "one\ntwo", "lines": 2, "problems": []}
    assert out["made"]["result"] == "data:image/png;base64,iVBO" and (out["made"]["width"], out["made"]["height"]) == (8, 4)
    assert out["failed"]["status"] == "error" and out["failed"]["error"] == "not an image"
    assert out["names"] == ["Chart_1-upscale.png", "image-result.png"]
    # Text read in an image is not on the page: its link opens the image, not a text fragment.
    assert out["imageCite"] == "https://a.example/i.png" and out["inlineCite"] == "https://a.example/p"
