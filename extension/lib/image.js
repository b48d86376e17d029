// Images from the context menu: "Extract text" and the host's image tools. The image travels to
// the host as base64 when the extension can read it and it fits the host's limit; otherwise by
// its address, which the host fetches under its URL policy.

export const MAX_IMAGE_CHARS = 20_000_000; // base64 characters the host accepts (protocol.MAX_IMAGE)
export const TEXT_MENU = "image-text";
export const TOOLS_MENU = "image-tools";
const TOOL_PREFIX = "image-tool:";

export function toolMenuId(name) {
  return TOOL_PREFIX + name;
}

export function toolOfMenu(menuItemId) {
  return String(menuItemId).startsWith(TOOL_PREFIX) ? String(menuItemId).slice(TOOL_PREFIX.length) : null;
}

// Base64 of the bytes, in slices (one String.fromCharCode over megabytes overflows the stack).
export function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

// The request's image fields: the bytes when read and small enough, else the address for the
// host to fetch (an http(s) one only: the host reads nothing else).
export function imageFields(srcUrl, base64) {
  if (base64 && base64.length <= MAX_IMAGE_CHARS) return { image: base64, url: srcUrl.startsWith("data:") ? "" : srcUrl };
  if (/^https?:/i.test(srcUrl)) return { url: srcUrl };
  throw new Error(base64 ? "The image is too large to send to localsearch (over 15 MB)."
                         : "This image cannot be read: it is not on the web and the browser did not give it.");
}

// The request for a menu click: image_text, or image_run of the tool the item names.
export function imageRequest(menuItemId, fields, pageUrl) {
  const tool = toolOfMenu(menuItemId);
  if (tool) return { type: "image_run", tool, ...fields };
  return { type: "image_text", ...fields, ...(pageUrl ? { page_url: pageUrl } : {}) };
}

// What the panel shows for a finished request: the text, or the made image as a data: URL.
export function imageOutcome(request, messages) {
  const end = messages[messages.length - 1];
  const shown = { kind: request.type === "image_run" ? "tool" : "text", tool: request.tool || null,
                  source: request.url || "" };
  if (!end || end.type === "error") return { ...shown, status: "error", error: end?.data?.message || "no answer" };
  const reply = messages.find((m) => m.type === "image_text" || m.type === "image_result");
  if (!reply) return { ...shown, status: "error", error: "the host sent no result" };
  if (reply.type === "image_text") {
    return { ...shown, status: "done", text: reply.data.text, lines: reply.data.lines.length,
             problems: reply.data.problems || [] };
  }
  return { ...shown, status: "done", result: `data:${reply.data.type};base64,${reply.data.image}`,
           width: reply.data.width, height: reply.data.height };
}

// A download name for a tool's result: the source's name with the tool's after it.
export function downloadName(source, tool) {
  let last = (source || "").split(/[?#]/)[0].split("/").pop() || "image";
  try {
    last = decodeURIComponent(last);
  } catch {
    // A malformed escape: the name as it is.
  }
  const stem = last.replace(/\.[A-Za-z0-9]{1,5}$/, "").replace(/[^\w.-]+/g, "_").slice(0, 80) || "image";
  return `${stem}-${(tool || "result").replace(/[^\w.-]+/g, "_")}.png`;
}
