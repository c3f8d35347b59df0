// "What I remember": the user's memories of past sessions as the console's panel shows them
// (list_memories, newest first, a page at a time; search_memories; the ones recalled into the
// current conversation, from get_context's and chat's `memories`). Pure: no DOM, no network.

export const MEMORY_PAGE_SIZE = 10;
export const MEMORY_SEARCH_LIMIT = 10;
// After a remembered session ends, the trigger writes its memory a moment later (in the same
// transaction as the user's stats, which the page waits for first): the panel re-reads its
// first page until the memory is there, this many times at most, a second apart.
export const MEMORY_WAIT_ATTEMPTS = 10;
export const MEMORY_WAIT_DELAY_MS = 1000;

function finite(v) {
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** `have` with `page`'s items added: the service's order (newest first), each session once. */
export function mergeMemories(have, page) {
  const out = [...(have || [])];
  const at = new Map(out.map((m, i) => [m.session_id, i]));
  for (const m of (page && page.items) || []) {
    if (!m || typeof m.session_id !== "string") continue;
    if (at.has(m.session_id)) out[at.get(m.session_id)] = m; // read again: the later read
    else {
      at.set(m.session_id, out.length);
      out.push(m);
    }
  }
  return out;
}

/** `items` without the memory of `sessionId` (forgotten). */
export function withoutMemory(items, sessionId) {
  return (items || []).filter((m) => m.session_id !== sessionId);
}

/**
 * The memories recalled into this conversation (the latest get_context or chat answer's
 * `memories`), as session id -> score.
 */
export function recalledBySession(memories) {
  const out = new Map();
  for (const m of memories || []) {
    if (m && typeof m.session_id === "string") out.set(m.session_id, finite(m.score) ?? 0);
  }
  return out;
}

/** Why a memory is in the current conversation. */
export function recallNote(score) {
  return `recalled for this conversation, score ${(finite(score) ?? 0).toFixed(2)}`;
}

/** How well a memory matched the search. */
export function matchNote(score) {
  return `match score ${(finite(score) ?? 0).toFixed(2)}`;
}

/** How many past sessions the conversation recalled, in a sentence (null for none). */
export function recalledSentence(recalled) {
  const n = recalled ? recalled.size : 0;
  if (!n) return null;
  return `${n} past ${n === 1 ? "session was" : "sessions were"} recalled into this conversation (marked below when listed).`;
}

/**
 * A memory's date: `ended_at` (seconds since the epoch) as an ISO string for <time datetime>
 * and as the user's locale writes it; null when it is not a date.
 */
export function endedAt(ts, locale) {
  const s = finite(ts);
  if (s === null || s <= 0) return null;
  const d = new Date(s * 1000);
  if (Number.isNaN(d.getTime())) return null;
  return { iso: d.toISOString(), text: d.toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" }) };
}

/** The session info's line on whether the current session is remembered. */
export function rememberedText(remembered) {
  if (remembered === null || remembered === undefined) return "—";
  return remembered ? "yes" : "no (memory off: this chat leaves no memory and recalls none)";
}

/** The search's result, in a sentence. */
export function searchSentence(q, n) {
  return n ? `${n} ${n === 1 ? "memory matches" : "memories match"} “${q}”, best first.` : `No memory matches “${q}”.`;
}

/**
 * Re-read the first page until it holds the memory of `sessionId` (the trigger writes it a
 * moment after the end), `attempts` reads at most; returns the last page read and whether it
 * holds it. `stillWanted()` false stops it (a newer read of the panel has begun).
 */
export async function awaitMemory(readFirstPage, sessionId, {
  attempts = MEMORY_WAIT_ATTEMPTS,
  delayMs = MEMORY_WAIT_DELAY_MS,
  sleep = (ms) => new Promise((r) => setTimeout(r, ms)),
  stillWanted = () => true,
} = {}) {
  let page = null;
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await sleep(delayMs);
    if (!stillWanted()) return { page, found: false, stopped: true };
    page = await readFirstPage();
    if (((page && page.items) || []).some((m) => m.session_id === sessionId)) return { page, found: true, stopped: false };
  }
  return { page, found: false, stopped: false };
}
