// Citations as links: each [n] of an answer points at the passage it came from, with a text
// fragment (#:~:text=) so the page opens scrolled to the quote and highlighted. Pure functions,
// no DOM: the panel renders what they return.

const MARKER = /\[(\d+(?:\s*[,–-]\s*\d+)*)\]/g;
const WORDS_AT_EACH_END = 5; // a long quote is found by its first and last words

// Text fragment directives escape these beyond encodeURIComponent: - & , (and spaces).
function encodeFragmentText(text) {
  return encodeURIComponent(text).replace(/-/g, "%2D");
}

// Punctuation at the ends would stop a fragment matching on a word boundary.
function trimmed(word) {
  return word.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "");
}

export function safeUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

export function fragmentUrl(url, quote) {
  const base = safeUrl(url);
  if (!base) return null;
  const words = (quote || "").split(/\s+/).filter(Boolean);
  const part = (chosen) => encodeFragmentText(trimmed(chosen.join(" ")));
  if (!trimmed(words.join(" "))) return base;
  const directive = words.length <= WORDS_AT_EACH_END * 2 ? part(words)
    : `${part(words.slice(0, WORDS_AT_EACH_END))},${part(words.slice(-WORDS_AT_EACH_END))}`;
  const [withoutFragment, fragment] = base.split("#", 2);
  // A fragment the page has stays; the directive follows it.
  return `${withoutFragment}#${fragment ? fragment.split(":~:")[0] : ""}:~:text=${directive}`;
}

function numbersOf(group) {
  const numbers = [];
  for (const piece of group.split(",")) {
    const [from, to] = piece.split(/[–-]/).map((n) => parseInt(n, 10));
    if (to === undefined) numbers.push(from);
    else for (let n = from; n <= to && n - from < 50; n++) numbers.push(n);
  }
  return numbers;
}

// Where each citation's sentence starts in the text. A citation keeps its sentence without the
// markers ("It is tall." for "It is tall [1]."), so it is looked for in the text without them.
function sentenceStarts(text, citations) {
  let plain = "";
  const at = []; // at[i]: where plain[i] is in text
  let last = 0;
  const copy = (end) => {
    for (let i = last; i < end; i++) { plain += text[i]; at.push(i); }
  };
  for (const match of text.matchAll(/\s*\[\d+(?:\s*[,–-]\s*\d+)*\]/g)) {
    copy(match.index);
    last = match.index + match[0].length;
  }
  copy(text.length);
  return citations.map((citation) => {
    const found = citation.sentence ? plain.indexOf(citation.sentence) : -1;
    return { citation, at: found < 0 ? -1 : at[found] };
  });
}

// The answer text as pieces: text, inline code (never parsed for markers), and citations, each
// [n] tied to the citation of the sentence it ends (the nearest one before it with that n).
export function answerPieces(text, citations = [], sources = []) {
  const pieces = [];
  const located = sentenceStarts(text, citations);
  const sourceOf = new Map(sources.map((s) => [s.n, s]));
  const segments = text.split(/(`[^`\n]+`)/);
  let offset = 0;
  for (const segment of segments) {
    if (segment.startsWith("`") && segment.endsWith("`") && segment.length > 1) {
      pieces.push({ kind: "code", text: segment.slice(1, -1), from: offset });
    } else {
      let last = 0;
      for (const match of segment.matchAll(MARKER)) {
        if (match.index > last) pieces.push({ kind: "text", text: segment.slice(last, match.index), from: offset + last });
        const position = offset + match.index;
        for (const n of numbersOf(match[1])) {
          // The nearest sentence before the marker with a citation of n; else one whose sentence
          // is not in the text as such; else the marker links its source alone.
          const before = located.filter((l) => l.citation.n === n && l.at >= 0 && l.at <= position);
          const best = before.sort((a, b) => b.at - a.at)[0] || located.find((l) => l.citation.n === n && l.at < 0);
          const source = sourceOf.get(n);
          if (best || source) {
            pieces.push({ kind: "cite", n, citation: best?.citation || null, source: source || null, from: position,
                          sentenceAt: best ? best.at : -1 });
          }
        }
        last = match.index + match[0].length;
      }
      if (last < segment.length) pieces.push({ kind: "text", text: segment.slice(last), from: offset + last });
    }
    offset += segment.length;
  }
  return markUnsupported(pieces);
}

// The text of a sentence the check found unsupported is marked, with why, up to its marker.
function markUnsupported(pieces) {
  const ranges = pieces.filter((p) => p.kind === "cite" && p.citation && !p.citation.supported && p.sentenceAt >= 0)
    .map((p) => ({ from: p.sentenceAt, to: p.from, reason: p.citation.reason || "no source sentence says this" }));
  if (!ranges.length) return pieces;
  const marked = [];
  for (const piece of pieces) {
    if (piece.kind !== "text") {
      const range = ranges.find((r) => piece.kind === "code" && piece.from >= r.from && piece.from < r.to);
      marked.push(range ? { ...piece, unsupported: range.reason } : piece);
      continue;
    }
    // Cut the text where a range starts or ends, then mark the parts inside one.
    const cuts = new Set([0, piece.text.length]);
    for (const r of ranges) {
      for (const at of [r.from, r.to]) if (at > piece.from && at < piece.from + piece.text.length) cuts.add(at - piece.from);
    }
    const sorted = [...cuts].sort((a, b) => a - b);
    for (let i = 0; i + 1 < sorted.length; i++) {
      const from = piece.from + sorted[i];
      const range = ranges.find((r) => from >= r.from && from < r.to);
      marked.push({ kind: "text", text: piece.text.slice(sorted[i], sorted[i + 1]), from,
                    ...(range ? { unsupported: range.reason } : {}) });
    }
  }
  return marked;
}

// Where a citation link goes: the quote's fragment on its source, or the source itself.
export function citationHref(piece) {
  if (piece.citation) return fragmentUrl(piece.citation.url, piece.citation.quote);
  return piece.source ? safeUrl(piece.source.url) : null;
}
