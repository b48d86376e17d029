// The side panel (and the popup, and Firefox's sidebar): asks through the background, which
// keeps the answer going when this view closes, and draws what it reports.

import { apply } from "./lib/state.js";
import { downloadName } from "./lib/image.js";
import { el, failure, imageView, turn } from "./lib/render.js";

const $ = (selector) => document.querySelector(selector);
const form = $("#ask");
const question = form.elements.question;
let state = null;
let background = null;
let tokens = 0;
const replies = new Map();

function connect() {
  background = chrome.runtime.connect({ name: "panel" });
  background.onMessage.addListener((message) => {
    if (message.type === "state") state = message.state;
    else if (message.type === "host") apply(state, message.message);
    else if (message.type === "image") return drawImage(message.image);
    else if (message.type === "reply") {
      replies.get(message.token)?.(message.messages);
      replies.delete(message.token);
      return;
    }
    draw();
  });
  // The background was stopped (the browser stops idle workers): connect again at once, and it
  // comes back with the state it kept; replies it owed will not come.
  background.onDisconnect.addListener(() => {
    background = null;
    for (const resolve of replies.values()) {
      resolve([{ type: "error", data: { message: "localsearch's background restarted: try again." } }]);
    }
    replies.clear();
    try {
      connect();
    } catch {
      // The extension was reloaded or removed: this view is gone with it.
    }
  });
}

function send(message) {
  if (!background) connect();
  background.postMessage(message);
}

// A request whose reply is wanted: the host's messages for it.
function request(message) {
  const token = `t${tokens++}`;
  return new Promise((resolve) => {
    replies.set(token, resolve);
    send({ ...message, token });
  });
}

function draw() {
  if (!state) return;
  const running = state.current?.status === "running";
  const problem = $("#problem");
  const hostFailure = state.connection.status === "failed" ? state.connection.failure : null;
  problem.hidden = !hostFailure;
  problem.replaceChildren(...(hostFailure ? failure(hostFailure).flat().filter(Boolean) : []));
  const runs = [...state.turns, ...(state.current ? [state.current] : [])];
  $("#conversation").replaceChildren(...runs.map((run) =>
    turn(run, { onRetry: run === state.current && run.status !== "running" ? () => send({ type: "retry" }) : null })));
  $("#cancel").hidden = !running;
  for (const button of [$("#ask-web"), $("#ask-page")]) button.disabled = running;
  $("#new-conversation").disabled = !state.conversationId && !runs.length;
  $("#conversation").lastElementChild?.scrollIntoView({ block: "end" });
}

// An image's text or a tool's result, above the conversation until closed.
function drawImage(image) {
  const box = $("#image");
  box.hidden = !image;
  if (!image) return box.replaceChildren();
  const shown = { ...image, download: downloadName(image.source, image.tool) };
  box.replaceChildren(imageView(shown, {
    onCopy: () => navigator.clipboard.writeText(image.text || "").catch(() => box.querySelector("textarea")?.select()),
    onClose: () => drawImage(null),
  }));
}

async function ask(aboutPage) {
  const text = question.value.trim();
  if (!text || state?.current?.status === "running") return;
  let tabId = null;
  if (aboutPage) {
    const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
    tabId = tab?.id ?? null;
  }
  send({ type: "ask", question: text, aboutPage, search: form.elements.search.checked, tabId });
  question.value = "";
  showHistory(false);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  ask(false);
});
question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ask(false);
  }
});
$("#ask-page").addEventListener("click", () => ask(true));
$("#cancel").addEventListener("click", () => send({ type: "cancel" }));
$("#new-conversation").addEventListener("click", () => {
  send({ type: "new" });
  question.focus();
});
$("#open-options").addEventListener("click", () => chrome.runtime.openOptionsPage());

// -- the history ------------------------------------------------------------------------
function showHistory(shown) {
  $("#history").hidden = !shown;
  $("#conversation").hidden = shown;
  $("#show-history").setAttribute("aria-pressed", String(shown));
  if (shown) loadHistory();
}

async function loadHistory() {
  const query = $("#history-search").elements.query.value.trim();
  const messages = await request({ type: "history", limit: 100, ...(query ? { query } : {}) });
  const end = messages[messages.length - 1];
  const note = $("#history-note");
  if (end?.type === "error") {
    note.textContent = `The history cannot be read: ${end.data.message}`;
    $("#history-list").replaceChildren();
    return;
  }
  const { conversations, total, enabled } = messages[0].data;
  note.textContent = (total ? `${total} conversation${total === 1 ? "" : "s"}` : "No conversations yet.") +
                     (enabled ? "" : " The history is off: new questions are not kept (see Options).");
  $("#history-list").replaceChildren(...conversations.map((c) => el("li", { "data-id": c.id },
    el("button", { type: "button", class: "title", onclick: () => reopen(c.id) }, c.title),
    el("span", { class: "when" }, `${new Date(c.updated * 1000).toLocaleString()} · ${c.turns} turn${c.turns === 1 ? "" : "s"}`),
    el("button", { type: "button", class: "delete danger", title: "Delete this conversation",
                   "aria-label": `Delete “${c.title}”`, onclick: () => remove({ conversation_id: c.id }) }, "✕"))));
}

async function reopen(conversationId) {
  const [reply] = await request({ type: "open", conversationId });
  if (reply.type === "error") $("#history-note").textContent = reply.data.message;
  else showHistory(false);
}

async function remove(what) {
  const messages = await request({ type: "delete", ...what });
  const end = messages[messages.length - 1];
  if (end.type === "error") $("#history-note").textContent = end.data.message;
  else loadHistory();
}

$("#show-history").addEventListener("click", () => showHistory($("#history").hidden));
$("#history-search").addEventListener("submit", (event) => {
  event.preventDefault();
  loadHistory();
});
$("#delete-all").addEventListener("click", () => {
  if (confirm("Delete every conversation in the history? This cannot be undone.")) remove({ all: true });
});

connect();
question.focus();
