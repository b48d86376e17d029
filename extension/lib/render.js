// Drawing a question and its answer. Everything a page or the host wrote is set as text, never
// as HTML: page text is data. Links go only to http(s) sources the host fetched.

import { answerPieces, citationHref, safeUrl } from "./citations.js";

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

const READ = new Set(["ok", "cached"]);

function stages(run) {
  return el("ul", { class: "stages", "aria-label": "Stages" }, run.stages.map((s) =>
    el("li", { class: s.running ? "running" : "", "data-stage": s.stage },
       s.running ? s.stage : `${s.stage} ${Number(s.seconds).toFixed(2)}s`)));
}

function pages(run) {
  return el("ul", { class: "pages", "aria-label": "Pages read" }, run.pages.map((p) => {
    const failed = !READ.has(p.status);
    return el("li", { class: failed ? "failed" : "", "data-status": p.status },
              failed ? "✗ " : "✓ ", p.title || p.url, failed ? ` — ${p.status}${p.reason ? `: ${p.reason}` : ""}` : "");
  }));
}

function citationLink(piece) {
  const href = citationHref(piece);
  const c = piece.citation;
  const where = c?.image ? `\nRead in an image on ${c.url}${safeUrl(c.image) ? `: ${c.image}` : ""}` : "";
  const title = c ? (c.supported ? `“${c.quote}”${c.section ? ` (${c.section})` : ""}${where}`
                                 : `Not supported by this source: ${c.reason || "no sentence of it says this"}`)
                  : piece.source?.title || "";
  return el("a", { class: `cite${c && !c.supported ? " unsupported" : ""}`, href, target: "_blank",
                   rel: "noopener noreferrer", title, "data-n": piece.n }, `[${piece.n}]`);
}

export const NOTHING_ANSWERS = "Nothing in the pages read answers this question.";

// The direct answer, read first: the shortest text of a source that answers, with its citation.
function shortAnswer(answer) {
  const short = answer.short_answer;
  if (!short?.text) return null;
  const source = (answer.sources || []).find((s) => s.n === short.n);
  const citation = (answer.citations || []).find((c) => c.n === short.n && c.supported);
  if (!source) return null;
  return el("p", { class: "short-answer" }, el("strong", {}, short.text), citationLink({ n: short.n, citation, source }));
}

export function answerText(answer, kind) {
  const node = el("div", { class: `answer ${kind}` });
  const short = shortAnswer(answer);
  if (short) node.append(short);
  if (!answer.answer && kind === "final") node.append(el("p", { class: "nothing" }, NOTHING_ANSWERS));
  for (const piece of answerPieces(answer.answer || "", answer.citations || [], answer.sources || [],
                                   answer.unsupported || [])) {
    if (piece.unsupported) {
      const text = piece.kind === "code" ? el("code", {}, piece.text) : piece.text;
      node.append(el("span", { class: "unsupported", title: `Not supported by its source: ${piece.unsupported}` }, text));
    } else if (piece.kind === "text") node.append(piece.text);
    else if (piece.kind === "code") node.append(el("code", {}, piece.text));
    else node.append(citationLink(piece));
  }
  return node;
}

// Sentences no source supports that the answer does not show (marked where it does).
function unsupported(answer) {
  const sentences = (answer.unsupported || []).filter((s) => !(answer.answer || "").includes(s));
  if (!sentences.length) return null;
  return el("div", { class: "unsupported-list" }, "No source supports: ",
            el("ul", {}, sentences.map((s) => el("li", {}, s))));
}

function sources(answer, run) {
  const list = answer?.sources || [];
  const listed = new Set(list.map((s) => s.url));
  const unread = run.pages.filter((p) => !READ.has(p.status) && !listed.has(p.url));
  if (!list.length && !unread.length) return null;
  return el("ol", { class: "sources", "aria-label": "Sources" },
    list.map((s) => el("li", { value: s.n, class: READ.has(s.status) ? "" : "failed", "data-status": s.status },
      el("a", { href: safeUrl(s.url), target: "_blank", rel: "noopener noreferrer" }, s.title || s.url), " ",
      el("span", { class: "status" }, s.status + (s.reason ? `: ${s.reason}` : "")))),
    unread.map((p) => el("li", { class: "failed", "data-status": p.status },
      el("span", {}, p.url), " ", el("span", { class: "status" }, p.status + (p.reason ? `: ${p.reason}` : "")))));
}

function problem(run, onRetry) {
  if (!run.error || run.status === "running") return null;
  const cancelled = run.status === "cancelled";
  const kept = run.status === "lost" && run.stages.length ? " What was shown is kept." : "";
  const text = cancelled ? "Cancelled." : `${run.error.message}${kept}`;
  return el("p", { class: "run-error", role: "status" }, text,
            onRetry ? el("button", { type: "button", class: "retry", onclick: onRetry }, "Try again") : null);
}

// One question with everything known about it so far.
export function turn(run, { onRetry } = {}) {
  const shown = run.answer ? answerText(run.answer, "final")
    : run.draft ? el("div", { class: "answer draft" }, run.draft)
    : run.extractive ? answerText(run.extractive, "extractive") : null;
  return el("article", { class: "turn", "data-status": run.status },
    el("p", { class: "question" }, run.question),
    run.page ? el("p", { class: "about" }, `About: ${run.page.title || run.page.url}`) : null,
    run.stages.length ? stages(run) : null,
    run.pages.length && !run.answer ? pages(run) : null,
    shown,
    run.answer ? unsupported(run.answer) : null,
    sources(run.answer || run.extractive, run),
    run.warnings.length ? el("ul", { class: "warnings" }, run.warnings.map((w) => el("li", {}, w))) : null,
    problem(run, onRetry));
}

// The text of an image, or what an image tool made of it, with a way to keep it.
export function imageView(image, { onCopy, onClose } = {}) {
  const heading = image.kind === "tool" ? `Image tool: ${image.tool}` : "Text in the image";
  let body;
  if (image.status === "running") body = el("p", { class: "about" }, "Reading the image…");
  else if (image.status === "error") body = el("p", { class: "run-error", role: "status" }, image.error);
  else if (image.kind === "text") {
    body = [el("textarea", { class: "image-text", readonly: true, rows: 6, "aria-label": "Text in the image" },
               image.text || ""),
            image.text ? null : el("p", { class: "about" }, "No text was found in this image."),
            (image.problems || []).map((p) => el("p", { class: "warnings" }, p)),
            el("button", { type: "button", class: "copy", onclick: onCopy, disabled: !image.text }, "Copy")];
  } else {
    body = [el("img", { class: "image-result", src: image.result, alt: `${image.tool} result`,
                        width: image.width, height: image.height }),
            el("a", { class: "download", href: image.result, download: image.download || "image.png" },
               `Download (${image.width} × ${image.height})`)];
  }
  return el("section", { class: "image", "data-status": image.status, "aria-label": heading },
            el("p", { class: "question" }, heading,
               el("button", { type: "button", class: "close", title: "Close", "aria-label": "Close", onclick: onClose },
                  "✕")),
            image.source ? el("p", { class: "about" }, image.source.startsWith("data:") ? "An inline image" : image.source)
                         : null,
            body);
}

// The host cannot be reached: why, and the commands that fix it.
export function failure(failure) {
  return [el("p", {}, el("strong", {}, failure.summary)),
          failure.message && failure.message !== failure.summary ? el("p", {}, `(${failure.message})`) : null,
          el("p", {}, "In a terminal, run:"),
          failure.commands.map((command) => el("code", {}, command))];
}
