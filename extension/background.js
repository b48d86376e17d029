// The extension's background: it owns the one connection to the localsearch host and the state
// of the conversation, so an answer goes on when the popup or panel closes, and any panel that
// opens shows it. Panels talk to it over a runtime port named "panel". The state is also kept in
// the browser's session storage (memory only, never on disk), so a worker the browser stopped
// while idle comes back with it.

import { HostConnection, pageForHost } from "./lib/host.js";
import { TEXT_MENU, TOOLS_MENU, imageFields, imageOutcome, imageRequest, toBase64, toolMenuId, toolOfMenu }
  from "./lib/image.js";
import { activeTab, readTab } from "./lib/page.js";
import { apply, begin, cancelled, followUp, initialState, lost, reopen, restored, startOver } from "./lib/state.js";

const IDLE_CLOSE_MS = 60_000; // the host (and the server's idle clock) is let go this long after the last use
const SAVE_DELAY_MS = 500; // the words of an answer are kept a few at a time
const MENU_ID = "ask-about-selection";

const state = initialState();
const panels = new Set();
const waiting = new Map(); // id -> {messages, resolve}: requests whose whole reply is awaited
let image = null; // the last image request's outcome (kept out of the saved state: a result can be megabytes)
let idleTimer = null;
let saveTimer = null;
let counter = 0;

// Everything waits for the state of the worker that ran before this one.
const ready = chrome.storage.session.get("state")
  .then(({ state: saved }) => { if (saved) restored(state, saved); })
  .catch(() => {});

const host = new HostConnection({
  onMessage(message) {
    if (message.id === null || message.id === undefined) { // the host itself failed (refused, no server)
      if (message.type === "error") fail({ kind: message.data.kind, summary: message.data.message,
                                           message: message.data.message, commands: ["localsearch doctor"] });
      return;
    }
    const pending = waiting.get(message.id);
    if (pending) {
      pending.messages.push(message);
      if (message.type === "done" || message.type === "error") {
        waiting.delete(message.id);
        pending.resolve(pending.messages);
        scheduleIdleClose();
      }
      return;
    }
    if (!apply(state, message)) return;
    broadcast({ type: "host", message });
    const ended = message.type === "done" || message.type === "error";
    save(ended);
    if (ended) scheduleIdleClose();
  },
  onFailure(failure) {
    fail(failure);
  },
});

function fail(failure) {
  for (const [id, pending] of waiting) {
    pending.resolve([{ id, type: "error", data: { message: failure.summary, kind: failure.kind, failure } }]);
  }
  waiting.clear();
  // The browser's "Native host has exited." follows the host's own reason: keep the reason.
  if (state.connection.status === "failed" && state.current?.status !== "running") return;
  lost(state, failure);
  changed();
}

function newId() {
  return `b${Date.now().toString(36)}${(counter++).toString(36)}`;
}

function broadcast(message) {
  for (const port of panels) port.postMessage(message);
}

function save(now) {
  clearTimeout(saveTimer);
  const write = () => chrome.storage.session.set({ state }).catch(() => {});
  if (now) write();
  else saveTimer = setTimeout(write, SAVE_DELAY_MS);
}

function changed() {
  broadcast({ type: "state", state });
  save(true);
}

function busy() {
  return panels.size > 0 || state.current?.status === "running" || waiting.size > 0;
}

function scheduleIdleClose() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => (busy() ? scheduleIdleClose() : host.close()), IDLE_CLOSE_MS);
}

// A request whose messages are all wanted at once (history, preferences): its messages.
function requestAll(request) {
  const id = newId();
  return new Promise((resolve) => {
    waiting.set(id, { messages: [], resolve });
    if (state.connection.status === "failed") state.connection = { status: "idle", failure: null };
    host.send({ ...request, id });
  });
}

// Stops the question being answered: in the host if it was sent, else before it is.
function stopCurrent() {
  const run = state.current;
  if (run?.status !== "running") return;
  if (run.sent) host.send({ type: "cancel", target: run.id });
  else cancelled(state);
}

async function ask({ question, aboutPage = false, search = false, tab = null, tabId = null, selection = null }) {
  stopCurrent();
  const id = newId();
  begin(state, { id, question, page: null });
  state.current.request = { question, aboutPage, search, tabId: tab?.id ?? tabId, selection };
  changed(); // at once: the panel shows the question and offers cancel while the page is read
  let page = null;
  if (aboutPage) {
    try {
      page = await readTab(tab || (tabId !== null ? await chrome.tabs.get(tabId) : await activeTab()));
      if (selection) page.selection = selection;
    } catch (error) {
      if (state.current?.id !== id) return;
      Object.assign(state.current, { status: "error", error: { message: error.message, kind: "page" } });
      return changed();
    }
    if (state.current?.id !== id || state.current.status !== "running") return; // cancelled, or asked again
    state.current.page = { url: page.url, title: page.title };
  }
  const request = page ? { type: "ask_page", question, page: pageForHost(page), search } : { type: "ask", question };
  Object.assign(request, followUp(state));
  state.current.sent = true;
  host.send({ ...request, id });
  changed();
}

async function fromPanel(message, port) {
  await ready;
  switch (message.type) {
    case "ask":
      return ask(message);
    case "retry":
      if (state.current?.request) return ask(state.current.request);
      return;
    case "cancel":
      stopCurrent();
      return changed();
    case "new":
      stopCurrent();
      startOver(state);
      return changed();
    case "open": {
      const [reply] = await requestAll({ type: "conversation", conversation_id: message.conversationId });
      if (reply.type === "conversation") {
        stopCurrent();
        reopen(state, reply.data);
        changed();
      }
      return port.postMessage({ type: "reply", token: message.token, messages: [reply] });
    }
    case "history":
    case "delete":
    case "preferences": {
      const { type, token, ...fields } = message;
      const messages = await requestAll({ type, ...fields });
      const deleted = type === "delete" && messages[messages.length - 1]?.type === "done";
      if (deleted && (fields.all || fields.conversation_id === state.conversationId)) {
        stopCurrent(); // the conversation shown is gone: so is its question being answered
        startOver(state);
        changed();
      }
      return port.postMessage({ type: "reply", token, messages });
    }
  }
}

chrome.runtime.onConnect.addListener(async (port) => {
  if (port.name !== "panel") return;
  panels.add(port);
  port.onDisconnect.addListener(() => {
    panels.delete(port);
    scheduleIdleClose();
  });
  port.onMessage.addListener((message) => fromPanel(message, port));
  await ready;
  clearTimeout(idleTimer);
  // Connect now: the host starts the server while the user types, a missing host is said before
  // anything is asked, and the open port keeps this worker (and its state) alive.
  if (!host.connected) {
    state.connection = { status: "idle", failure: null }; // tried again: the user may have fixed it
    host.open();
  }
  if (panels.has(port)) {
    port.postMessage({ type: "state", state });
    if (image) port.postMessage({ type: "image", image });
  }
  refreshToolsMenu();
});

// The options page asks for and saves the preferences the host keeps.
chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  if (message?.type !== "preferences" || sender.id !== chrome.runtime.id) return false;
  requestAll({ type: "preferences", ...(message.set ? { set: message.set } : {}) }).then(sendResponse);
  return true; // the answer comes later
});

// Opening the UI: Chrome's side panel; the popup where there is none; Firefox's sidebar.
function openPanel(windowId) {
  if (chrome.sidePanel?.open) return chrome.sidePanel.open({ windowId });
  if (globalThis.browser?.sidebarAction) return globalThis.browser.sidebarAction.open();
  return chrome.action.openPopup?.();
}

if (chrome.sidePanel?.setPanelBehavior) {
  chrome.sidePanel.setPanelBehavior({ openPanelOnActionClick: true }).catch(() => {});
} else if (globalThis.browser?.sidebarAction) {
  chrome.action.onClicked.addListener(() => globalThis.browser.sidebarAction.toggle());
} else {
  chrome.action.setPopup({ popup: "panel.html" });
}

chrome.commands.onCommand.addListener((command, tab) => {
  if (command === "open-panel") Promise.resolve(openPanel(tab?.windowId)).catch(() => {});
});

// The menus: a question about the selection; on images, their text and the host's image tools
// (listed when the host is reached, kept by the browser until they change).
function buildMenus(tools = []) {
  chrome.contextMenus.removeAll(() => {
    chrome.contextMenus.create({ id: MENU_ID, title: "Ask localsearch about “%s”", contexts: ["selection"] });
    chrome.contextMenus.create({ id: TEXT_MENU, title: "Extract text with localsearch", contexts: ["image"] });
    if (!tools.length) return;
    chrome.contextMenus.create({ id: TOOLS_MENU, title: "localsearch image tools", contexts: ["image"] });
    for (const tool of tools.filter((t) => !t.mask)) { // a tool that needs a mask needs a drawing first
      chrome.contextMenus.create({ id: toolMenuId(tool.name), parentId: TOOLS_MENU, contexts: ["image"],
                                   title: `${tool.name} (${tool.family})` });
    }
  });
}

let toolsListed = "";
// The host's image tools, put in the image menu when they changed; what was listed.
async function refreshToolsMenu() {
  const [reply] = await requestAll({ type: "image_tools" });
  if (reply?.type !== "image_tools") return [];
  const listed = JSON.stringify(reply.data.tools.map((t) => [t.name, t.family, t.mask]));
  if (listed !== toolsListed) buildMenus(reply.data.tools);
  toolsListed = listed;
  return reply.data.tools;
}

chrome.runtime.onInstalled.addListener(() => buildMenus());

function showImage(outcome) {
  image = outcome;
  broadcast({ type: "image", image });
}

// Reads the image the menu was opened on (as the user's browser sees it) and asks the host.
async function runImage(info, tab) {
  await ready;
  const source = info.srcUrl || "";
  const tool = toolOfMenu(info.menuItemId);
  showImage({ kind: tool ? "tool" : "text", tool, source, status: "running" });
  let base64 = null;
  try {
    const response = await fetch(source, { credentials: "include" });
    if (response.ok) base64 = toBase64(await response.arrayBuffer());
  } catch {
    // Not readable from here (a blocked address, a server that refuses): the host may fetch it.
  }
  let request;
  try {
    request = imageRequest(info.menuItemId, imageFields(source, base64), tab?.url || "");
  } catch (error) {
    return showImage({ kind: tool ? "tool" : "text", tool, source, status: "error", error: error.message });
  }
  const messages = await requestAll(request);
  showImage(imageOutcome({ ...request, url: source }, messages));
}

async function askAboutSelection(info, tab) {
  await ready;
  const selection = (info.selectionText || "").trim();
  return ask({ question: `What does this page say about “${selection.slice(0, 300)}”?`, aboutPage: true, tab,
               selection });
}

chrome.contextMenus.onClicked.addListener((info, tab) => {
  const forImage = info.menuItemId === TEXT_MENU || toolOfMenu(info.menuItemId) !== null;
  if (info.menuItemId !== MENU_ID && !forImage) return;
  // First, while the click still counts as the user's gesture (it is refused after an await).
  Promise.resolve(openPanel(tab.windowId)).catch(() => {});
  if (forImage) runImage(info, tab);
  else askAboutSelection(info, tab);
});

// For tests and the devtools console: the entry points the menu and the panels use.
globalThis.localsearch = { state, host, ask, askAboutSelection, runImage, refreshToolsMenu };
