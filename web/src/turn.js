// One chat turn as the page holds it until the `chat` function has answered it, and the
// answer's metadata and the context's messages as the page shows them. Pure: no DOM, no network.

// The service's rule for a client message id; the answer is stored under the id + "#a".
export const CLIENT_MESSAGE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

export function newTurnId(random = defaultRandom()) {
  return `t-${random}`.replace(/[^A-Za-z0-9_.:-]/g, "").slice(0, 128);
}

function defaultRandom() {
  return globalThis.crypto && crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}

/**
 * The turn to send for `content` in `sessionId`: the pending one when it is the same message
 * (so a retry reuses its client_message_id and the service answers it once), else a new one.
 * @param {{sessionId: string, content: string, clientMessageId: string}|null} pending
 */
export function turnFor(pending, sessionId, content, makeId = newTurnId) {
  if (pending && pending.sessionId === sessionId && pending.content === content) return pending;
  return { sessionId, content, clientMessageId: makeId() };
}

/** A pending turn read back from sessionStorage, or null when it is missing or malformed. */
export function parsePending(raw) {
  let p;
  try {
    p = JSON.parse(raw || "null");
  } catch {
    return null;
  }
  const ok =
    p &&
    typeof p === "object" &&
    typeof p.sessionId === "string" &&
    typeof p.content === "string" &&
    typeof p.clientMessageId === "string" &&
    CLIENT_MESSAGE_ID.test(p.clientMessageId);
  return ok ? { sessionId: p.sessionId, content: p.content, clientMessageId: p.clientMessageId } : null;
}

/**
 * What the page says about an answer: its confidence and the knowledge-base entries it used.
 * An answer without sources (the assistant did not find the question in its knowledge base)
 * says so instead of inventing any.
 * @param {object|null|undefined} metadata  the answer's {confidence, sources, collection}
 */
export function describeAnswer(metadata) {
  const md = metadata && typeof metadata === "object" ? metadata : {};
  const c = md.confidence;
  const confidence = typeof c === "number" && Number.isFinite(c) ? Math.min(1, Math.max(0, c)) : null;
  const sources = Array.isArray(md.sources) ? md.sources.filter((s) => typeof s === "string") : [];
  const collection = typeof md.collection === "string" && md.collection ? md.collection : null;
  return {
    confidence,
    confidenceText: confidence === null ? "confidence unknown" : `confidence ${Math.round(confidence * 100)}%`,
    sources,
    sourcesText: sources.length ? `sources: ${sources.join(", ")}` : "no sources",
    collection,
  };
}

/**
 * The transcript with `messages` added in order, skipping any whose seq it already holds:
 * a turn finished after a reload may have its question in the history read back already.
 */
export function withMessages(transcript, messages) {
  const seen = new Set(transcript.map((m) => m.seq).filter((seq) => seq !== undefined));
  return [...transcript, ...messages.filter((m) => m.seq === undefined || !seen.has(m.seq))];
}

/**
 * What the context panel says about its messages: `shown` is how many get_context answered (the
 * service's window, which the page does not know in advance), `total` the session's message
 * count as the page last saw it. Past the window the context holds the last few only.
 */
export function contextNote(shown, total) {
  const n = (k) => `${k} message${k === 1 ? "" : "s"}`;
  if (shown <= 0) return "(none yet)";
  if (total > shown) return `(the last ${n(shown)} of ${total})`;
  if (total === shown) return `(${n(shown)}: the whole session)`;
  return `(${n(shown)})`; // the page's count is behind (or unknown): claim no more than it knows
}

// The service's limit on a message's content, in UTF-8 bytes: MAX_CONTENT_BYTES
// (shared/settings.py, `max_content_bytes`, 32 KiB by default; openapi.yaml: "At most 32 KiB
// of UTF-8"). No function tells the page its value (health, create_session and chat do not
// answer it), so this is the page's one copy of it. A deployment that sets it lower is still
// refused by the service (413), and the page then offers no "Try again".
export const MAX_CONTENT_BYTES = 32 * 1024;

const utf8 = new TextEncoder();
const n = (k) => k.toLocaleString("en-US");

/** The size of `text` as the service counts it, and what the counter says about it. */
export function contentSize(text, limit = MAX_CONTENT_BYTES) {
  const bytes = utf8.encode(String(text ?? "")).length;
  const over = Math.max(0, bytes - limit);
  return {
    bytes,
    limit,
    over,
    ok: over === 0,
    text: `${n(bytes)} / ${n(limit)} bytes${over ? `: ${n(over)} too many` : ""}`,
    problem: over
      ? `Your message is ${n(bytes)} bytes of text; the service takes at most ${n(limit)} bytes. Shorten it by ${n(over)} bytes (letters such as é or emoji count as 2 to 4 bytes each).`
      : null,
  };
}
