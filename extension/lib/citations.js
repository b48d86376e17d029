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
  const part = (chosen) => trimmed(chosen.join(" "));
  const [start, end] = words.length <= WORDS_AT_EACH_END * 2 ? [part(words), null]
    : [part(words.slice(0, WORDS_AT_EACH_END)), part(words.slice(-WORDS_AT_EACH_END))];
  if (!start || end === "") return base; // nothing a fragment could match on: the page itself
  const directive = encodeFragmentText(start) + (end ? `,${encodeFragmentText(end)}` : "");
  // A fragment the page has stays; the directive follows it.
  const hash = base.indexOf("#");
  const page = hash < 0 ? base : base.slice(0, hash);
  const fragment = hash < 0 ? "" : base.slice(hash + 1).split(":~:")[0];
  return `${page}#${fragment}:~:text=${directive}`;
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

const CODE = /(`[^`\n]+`)/;
const isCode = (segment) => segment.length > 1 && segment.startsWith("`") && segment.endsWith("`");

// Where sentences are in the text. The host keeps an answer sentence without its markers ("It is
// tall." for "It is tall [1].") but with its code as written (`a[0]` stays), so it is looked for
// in the text with the markers outside code taken out. Returns [start, end) in the text, or null.
function locator(text) {
  let plain = "";
  const at = []; // at[i]: where plain[i] is in text
  let offset = 0;
  for (const segment of text.split(CODE)) {
    let last = 0;
    const copy = (end) => {
      for (let i = last; i < end; i++) { plain += segment[i]; at.push(offset + i); }
    };
    if (!isCode(segment)) {
      for (const match of segment.matchAll(/\s*\[\d+(?:\s*[,–-]\s*\d+)*\]/g)) {
        copy(match.index);
        last = match.index + match[0].length;
      }
    }
    copy(segment.length);
    offset += segment.length;
  }
  return (sentence) => {
    const found = sentence ? plain.indexOf(sentence.trim()) : -1;
    return found < 0 ? null : [at[found], at[found + sentence.trim().length - 1] + 1];
  };
}

// The answer text as pieces: text, inline code (never parsed for markers), and citations. Each
// [n] is tied to the citation of n whose sentence it ends; a marker no citation's sentence holds
// links its source alone, and one naming no source is dropped. The sentences no source supports
// (``unsupported``, and citations not supported) are marked with why.
export function answerPieces(text, citations = [], sources = [], unsupported = []) {
  const find = locator(text);
  const located = citations.map((citation) => ({ citation, span: find(citation.sentence) }));
  const sourceOf = new Map(sources.map((s) => [s.n, s]));
  const pieces = [];
  let offset = 0;
  for (const segment of text.split(CODE)) {
    if (isCode(segment)) {
      pieces.push({ kind: "code", text: segment.slice(1, -1), from: offset });
    } else {
      let last = 0;
      for (const match of segment.matchAll(MARKER)) {
        if (match.index > last) pieces.push({ kind: "text", text: segment.slice(last, match.index), from: offset + last });
        const position = offset + match.index;
        for (const n of numbersOf(match[1])) {
          const own = located.find((l) => l.citation.n === n && l.span && l.span[0] <= position && position < l.span[1]);
          const source = sourceOf.get(n);
          if (own || source) pieces.push({ kind: "cite", n, citation: own?.citation || null, source: source || null });
        }
        last = match.index + match[0].length;
      }
      if (last < segment.length) pieces.push({ kind: "text", text: segment.slice(last), from: offset + last });
    }
    offset += segment.length;
  }
  const reasons = new Map(unsupported.map((sentence) => [sentence, "no source supports it"]));
  for (const c of citations) if (!c.supported && c.sentence) reasons.set(c.sentence, c.reason || "no source supports it");
  const ranges = [...reasons].map(([sentence, reason]) => ({ span: find(sentence), reason })).filter((r) => r.span);
  return ranges.length ? marked(pieces, ranges) : pieces;
}

// The pieces, with text inside an unsupported sentence cut out and marked with why.
function marked(pieces, ranges) {
  const inside = (at) => ranges.find((r) => r.span[0] <= at && at < r.span[1]);
  const result = [];
  for (const piece of pieces) {
    if (piece.kind !== "text") {
      const range = piece.kind === "code" ? inside(piece.from) : null;
      result.push(range ? { ...piece, unsupported: range.reason } : piece);
      continue;
    }
    const cuts = new Set([0, piece.text.length]);
    for (const { span } of ranges) {
      for (const at of span) if (at > piece.from && at < piece.from + piece.text.length) cuts.add(at - piece.from);
    }
    const sorted = [...cuts].sort((a, b) => a - b);
    for (let i = 0; i + 1 < sorted.length; i++) {
      const from = piece.from + sorted[i];
      const range = inside(from);
      result.push({ kind: "text", text: piece.text.slice(sorted[i], sorted[i + 1]), from,
                    ...(range ? { unsupported: range.reason } : {}) });
    }
  }
  return result;
}

// Where a citation link goes: the quote's fragment on its source, or the source itself.
export function citationHref(piece) {
  // Text read in an image is not the page's text: no fragment would find it, so the link opens
  // the image (an http(s) one) or the page.
  if (piece.citation?.image) return safeUrl(piece.citation.image) || safeUrl(piece.citation.url);
  if (piece.citation) return fragmentUrl(piece.citation.url, piece.citation.quote);
  return piece.source ? safeUrl(piece.source.url) : null;
}
