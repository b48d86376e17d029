// The options page: the preferences the host keeps for the browser's questions.

import { el, failure } from "./lib/render.js";

const form = document.querySelector("#preferences");
const status = document.querySelector("#status");

function say(text, kind = "") {
  status.className = kind;
  status.replaceChildren(...(Array.isArray(text) ? text.flat().filter(Boolean) : [text]));
}

let shown = null; // the values as loaded: Save sends only what the user changed
const comparable = (name, value) => JSON.stringify(name === "engines" ? [...value].sort() : value);

function show(data) {
  shown = data.values;
  const chosen = new Set(data.values.engines);
  document.querySelector("#engines").replaceChildren(...data.engines.map((name) =>
    el("label", {}, el("input", { type: "checkbox", name: "engine", value: name, checked: chosen.has(name) }), ` ${name}`)));
  form.elements.searxng_url.value = data.values.searxng_url ?? "";
  form.elements.max_pages.value = data.values.max_pages;
  form.elements.llm.checked = data.values.llm;
  form.elements.history.checked = data.values.history;
  for (const help of document.querySelectorAll("[data-help]")) help.textContent = data.help[help.dataset.help] || "";
  form.hidden = false;
}

async function exchange(set) {
  const messages = await chrome.runtime.sendMessage({ type: "preferences", ...(set ? { set } : {}) });
  const end = messages[messages.length - 1];
  if (end.type === "error") {
    // The host cannot be reached (what to run), or it refused a value (why).
    say(end.data.failure ? failure(end.data.failure) : `Not saved: ${end.data.message}`, "error");
    return null;
  }
  show(messages[0].data);
  return messages[0].data;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const values = {
    engines: [...form.querySelectorAll("input[name=engine]:checked")].map((box) => box.value),
    searxng_url: form.elements.searxng_url.value.trim(),
    max_pages: Number(form.elements.max_pages.value),
    llm: form.elements.llm.checked,
    history: form.elements.history.checked,
  };
  if (!values.engines.length) return say("Choose at least one search engine.", "error");
  // What is left as it was keeps following the config file.
  const set = Object.fromEntries(Object.entries(values)
    .filter(([name, value]) => comparable(name, value) !== comparable(name, shown[name])));
  if (!Object.keys(set).length) return say("Nothing changed.", "saved");
  if (await exchange(set)) say("Saved. The next question uses these.", "saved");
});

document.querySelector("#reset").addEventListener("click", async () => {
  const forget = { engines: null, searxng_url: null, max_pages: null, llm: null, history: null };
  if (await exchange(forget)) say("The config file's values apply again.", "saved");
});

exchange(null);
