// What the panel shows, built from the host's messages. The background keeps the one copy that
// outlives a closed panel or popup; each open panel gets it whole, then the same messages, and
// folds them with the same functions.

export function initialState() {
  return {
    connection: { status: "idle", failure: null }, // idle, ready, failed
    conversationId: null,
    turns: [], // finished questions of this conversation, oldest first
    current: null, // the question being answered, or the last one that did not finish
  };
}

export function begin(state, { id, question, page }) {
  state.current = {
    id, question, page: page ? { url: page.url, title: page.title } : null, status: "running",
    started: Date.now(), stages: [], pages: [], engines: {}, warnings: [], extractive: null, draft: "",
    answer: null, error: null,
  };
  state.connection = { status: "ready", failure: null };
}

// Folds one host message of the current question into the state; false if it is not one.
export function apply(state, message) {
  const run = state.current;
  if (!run || message.id !== run.id || run.status !== "running") return false;
  const data = message.data || {};
  switch (message.type) {
    case "stage_start":
      run.stages.push({ stage: data.stage, running: true, seconds: null, detail: "" });
      break;
    case "stage_end": {
      const stage = [...run.stages].reverse().find((s) => s.stage === data.stage && s.running);
      const detail = Object.entries(data)
        .filter(([k, v]) => !["stage", "seconds"].includes(k) && ["number", "string"].includes(typeof v))
        .map(([k, v]) => `${k} ${v}`).join(", ");
      if (stage) Object.assign(stage, { running: false, seconds: data.seconds, detail });
      else run.stages.push({ stage: data.stage, running: false, seconds: data.seconds, detail });
      break;
    }
    case "search_results":
      run.engines = data.engines || {};
      break;
    case "page":
      run.pages = run.pages.filter((p) => p.url !== data.url).concat([data]);
      break;
    case "extractive_answer":
      run.extractive = data;
      break;
    case "answer_delta":
      run.draft += data.text || "";
      break;
    case "answer":
      run.answer = data;
      if (data.conversation_id) state.conversationId = data.conversation_id;
      break;
    case "warning":
      run.warnings.push(data.message);
      break;
    case "done":
      run.status = "done";
      if (run.answer) {
        state.turns.push(run);
        state.current = null;
      }
      break;
    case "error":
      run.status = data.kind === "cancelled" ? "cancelled" : "error";
      run.error = data;
      break;
    default:
      return false;
  }
  return true;
}

// The host went away: what was shown stays, with why it stopped.
export function lost(state, failure) {
  state.connection = { status: "failed", failure };
  if (state.current?.status === "running") {
    state.current.status = "lost";
    state.current.error = { message: failure.summary, kind: failure.kind };
  }
}

// Stopped before the host had it (while the page was being read).
export function cancelled(state) {
  Object.assign(state.current, { status: "cancelled", error: { message: "cancelled", kind: "cancelled" } });
}

// What a follow-up sends: the conversation's id while the history keeps it, else its last turns
// themselves (the history is off, so the host has nothing to look up).
export function followUp(state) {
  const last = state.turns[state.turns.length - 1];
  if (!last) return {};
  if (state.conversationId && last.answer?.conversation_id === state.conversationId) {
    return { conversation_id: state.conversationId };
  }
  return { conversation: state.turns.slice(-4).map((t) => t.answer?.turn || { question: t.question,
                                                                               answer: t.answer?.answer || "" }) };
}

// The state a stopped worker kept. A question it was answering cannot be picked up again.
export function restored(state, saved) {
  Object.assign(state, saved, { connection: { status: "idle", failure: null } });
  if (state.current?.status === "running") {
    Object.assign(state.current, { status: "lost",
      error: { message: "The browser stopped localsearch's background while it was answering.", kind: "lost" } });
  }
}

export function startOver(state) {
  state.conversationId = null;
  state.turns = [];
  state.current = null;
}

// A conversation reopened from the history: its turns, with their answers as kept.
export function reopen(state, conversation) {
  startOver(state);
  state.conversationId = conversation.id;
  state.turns = conversation.turns.map((turn) => ({
    id: `kept-${turn.position}`, question: turn.question, page: null, status: "done", stages: [], pages: [],
    engines: {}, warnings: [], extractive: null, draft: "",
    answer: { ...turn.answer, conversation_id: conversation.id }, error: null,
  }));
}
