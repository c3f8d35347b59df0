// What the console keeps in sessionStorage so that a reload loses nothing: the session it had
// (with the message count it last saw), the turn sent but not answered yet (a retry reuses its
// client_message_id, so the service stores and answers it once), and the text being typed.
// Storage may be disabled (privacy mode): then nothing is kept and the page still works.

import { parsePending } from "./turn.js";

const DRAFT_KEY = "chat-memory.draft";
const SESSION_KEY = "chat-memory.session";
const PENDING_KEY = "chat-memory.pending";

function safeStorage(fn) {
  try {
    return fn(window.sessionStorage);
  } catch {
    return null;
  }
}

function put(key, value) {
  safeStorage((s) => (value === null || value === undefined ? s.removeItem(key) : s.setItem(key, value)));
}

/** `{uid, sessionId, messageCount}` as last kept, or null. */
export function keptSession() {
  return safeStorage((s) => JSON.parse(s.getItem(SESSION_KEY) || "null"));
}

export function keepSession(saved) {
  put(SESSION_KEY, saved ? JSON.stringify(saved) : null);
}

/** The pending turn as kept, or null when there is none or it is malformed. */
export function keptTurn() {
  return safeStorage((s) => parsePending(s.getItem(PENDING_KEY)));
}

export function keepTurn(turn) {
  put(PENDING_KEY, turn ? JSON.stringify(turn) : null);
}

export function keptDraft() {
  return safeStorage((s) => s.getItem(DRAFT_KEY)) || "";
}

/** The draft as typed; null forgets it. */
export function keepDraft(text) {
  put(DRAFT_KEY, text);
}
