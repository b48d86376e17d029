// The native-messaging connection to `localsearch host`: requests out, messages back by id,
// long messages joined from their `part`s, and a clear reason when the host cannot be reached.

export const HOST_NAME = "org.localsearch.host";
const MAX_HTML = 10_000_000; // characters of a page the host accepts (protocol.MAX_HTML)

// What the browser says when the host cannot be used, and what the user can do about it.
// Chromium's messages first, then Firefox's.
const FAILURES = [
  ["No such native application", "missing", "The localsearch host is not installed for this browser.",
   ["localsearch install-host --browser firefox", "localsearch doctor"]],
  ["not found", "missing", "The localsearch host is not installed for this browser.",
   ["localsearch install-host", "localsearch doctor"]],
  ["forbidden", "forbidden", "The localsearch host does not allow this copy of the extension.",
   ["LOCALSEARCH_HOST_EXTENSIONS={id} localsearch install-host", "localsearch doctor"]],
  ["has exited", "exited", "The localsearch host stopped.", ["localsearch doctor"]],
  ["communicating", "broken", "The localsearch host sent something the browser could not read.",
   ["localsearch doctor"]],
];

export function describeFailure(message, extensionId) {
  for (const [needle, kind, summary, commands] of FAILURES) {
    if (message.includes(needle)) {
      return { kind, summary, message, commands: commands.map((c) => c.replace("{id}", extensionId)) };
    }
  }
  return { kind: "unknown", summary: "The localsearch host cannot be reached.", message,
           commands: ["localsearch doctor"] };
}

export class HostConnection {
  // onMessage(message) gets every message with its request's id; onFailure(failure) once,
  // when the connection ends without being closed here.
  constructor({ onMessage, onFailure, connectNative = (name) => chrome.runtime.connectNative(name) }) {
    this.onMessage = onMessage;
    this.onFailure = onFailure;
    this.connectNative = connectNative;
    this.port = null;
    this.parts = new Map();
    this.counter = 0;
  }

  get connected() {
    return this.port !== null;
  }

  open() {
    if (this.port) return;
    const port = this.connectNative(HOST_NAME);
    this.port = port;
    port.onMessage.addListener((message) => this.received(message));
    port.onDisconnect.addListener(() => {
      // Chromium says why in runtime.lastError, Firefox in port.error.
      const reason = port.error?.message || chrome.runtime.lastError?.message || "Native host has exited.";
      if (this.port !== port) return; // closed on purpose
      this.port = null;
      this.parts.clear();
      this.onFailure(describeFailure(reason, chrome.runtime.id));
    });
  }

  close() {
    const port = this.port;
    this.port = null;
    port?.disconnect();
  }

  // Sends a request (an id is given to it); returns the id.
  send(request) {
    this.open();
    const id = request.id || `r${Date.now().toString(36)}${(this.counter++).toString(36)}`;
    this.port.postMessage({ ...request, id });
    return id;
  }

  received(message) {
    if (message?.type !== "part") {
      this.onMessage(message);
      return;
    }
    // A message over the browser's 1 MB limit comes as parts: joined, in order, it is the JSON.
    const key = String(message.id);
    const parts = this.parts.get(key) || [];
    parts[message.index] = message.text;
    this.parts.set(key, parts);
    if (parts.filter((p) => p !== undefined).length === message.count) {
      this.parts.delete(key);
      this.onMessage(JSON.parse(parts.join("")));
    }
  }
}

// The page as the browser shows it, within what the host accepts.
export function pageForHost(page) {
  const html = page.html.length > MAX_HTML ? page.html.slice(0, MAX_HTML) : page.html;
  return { url: page.url, title: (page.title || "").slice(0, 1000), html,
           selection: (page.selection || "").slice(0, 20000) };
}
