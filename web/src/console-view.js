// What the console shows: each panel drawn from what the service answered. It holds no state
// (main.js passes what to draw), and every piece of user text and every answer reaches the DOM
// through textContent only.

import { ApiError } from "./api.js";
import { erasureConfirmed } from "./erase.js";
import { $, messageItem } from "./page.js";
import { endedAt, matchNote, recalledSentence, recallNote, rememberedText, searchSentence } from "./memories.js";
import { contentSize, contextNote, describeAnswer } from "./turn.js";

// The console's elements by data-testid, looked up once (a module runs after the document is
// parsed). The error banner is page.js's.
export const el = {};
for (const id of [
  "auth-status", "session-id", "session-status", "health", "transcript", "transcript-empty", "composer",
  "composer-input", "send-button", "end-session-button", "new-session-button", "message-count", "storage-layer",
  "durable", "context-storage", "summary-updated", "summary-empty", "summary", "summary-meta", "context-count",
  "context-messages", "formatted-context", "end-panel", "end-status", "end-reason", "end-message-count",
  "queries-recorded", "end-summary", "history-meta", "history", "history-after", "end-reason-row", "config-note",
  "user-stats-status", "stats-sessions", "stats-messages", "stats-queries", "stats-recent", "download-data-button",
  "delete-data-button", "erase-confirm", "erase-word", "erase-submit", "erase-cancel", "erase-receipt",
  "receipt-sentence", "receipt-counts", "composer-count", "session-notice", "session-memory", "memory-switch",
  "memory-switch-label", "memory-panel", "memory-refresh", "memory-search", "memory-search-input",
  "memory-search-button", "memory-search-clear", "memory-recall-note", "memory-search-note", "memory-list",
  "memory-empty", "memory-more", "memory-status",
]) {
  el[id] = $(id);
}

function fmtTime(ts) {
  if (ts === null || ts === undefined) return "";
  const d = new Date(typeof ts === "number" ? (ts < 1e12 ? ts * 1000 : ts) : ts);
  return Number.isNaN(d.getTime()) ? String(ts) : d.toLocaleTimeString();
}

export function layerBadge(node, layer) {
  node.textContent = "";
  if (!layer) {
    node.textContent = "—";
    return;
  }
  const span = document.createElement("span");
  span.className = `layer ${layer}`;
  span.textContent = layer;
  node.append(span);
}

function yesNo(node, value) {
  node.className = value ? "yes" : "no";
  node.textContent = value === undefined || value === null ? "—" : value ? "yes" : "no (memory only)";
}

// What the user may do now: `state` is the page's (signed in, session, ended, busy).
export function renderControls(state) {
  const ready = !!state.sessionId && !state.ended;
  el["composer-input"].disabled = !state.uid || state.ended;
  // Without a session (after an erasure) the next message starts one.
  // A message over the service's limit is not sent: the counter says by how much.
  const size = renderCount();
  el["send-button"].disabled = !state.uid || state.ended || state.busy || !size.ok;
  el["end-session-button"].disabled = !ready || state.busy;
  el["new-session-button"].hidden = !state.ended;
  // "Remember this chat" decides the next session the page starts: shown when there is one to
  // start (after the end, or after an erasure, when the next message starts one).
  el["memory-switch-label"].hidden = !state.uid || !state.nextChat;
  el["memory-switch"].disabled = state.busy;
  el["download-data-button"].disabled = !state.uid || state.busy;
  el["delete-data-button"].disabled = !state.uid || state.busy;
  el["erase-submit"].disabled = state.busy || !erasureConfirmed(el["erase-word"].value);
  el["composer"].setAttribute("aria-busy", state.busy ? "true" : "false");
}

// The counter under the message box: its size in UTF-8 bytes against the service's limit.
export function renderCount() {
  const size = contentSize(el["composer-input"].value);
  const counter = el["composer-count"];
  counter.textContent = size.text;
  counter.dataset.over = size.ok ? "false" : "true";
  if (size.ok) el["composer-input"].removeAttribute("aria-invalid");
  else el["composer-input"].setAttribute("aria-invalid", "true");
  return size;
}

// What the user must know about the session they have (e.g. an old one could not be
// restored); null hides it.
export function renderNotice(text) {
  el["session-notice"].textContent = text || "";
  el["session-notice"].hidden = !text;
}

// The chat column keeps the message box on screen (styles.css); when it covers the end of the
// transcript (a phone, where the page scrolls), the page scrolls so the newest message shows
// right above it.
export function revealNewest() {
  const list = el.transcript;
  list.scrollTop = list.scrollHeight;
  const covered = list.getBoundingClientRect().bottom - el.composer.getBoundingClientRect().top;
  if (covered > 0) window.scrollBy(0, covered);
}

export function renderTranscript(transcript) {
  const list = el.transcript;
  list.textContent = "";
  for (const m of transcript) {
    const li = document.createElement("li");
    li.className = `msg ${m.role}`;
    li.dataset.testid = "message";
    li.dataset.role = m.role;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = m.role === "user" ? "You" : "Assistant";
    const body = document.createElement("span");
    body.className = "content";
    body.textContent = m.content;
    li.append(who, body);
    if (m.role === "assistant") li.append(answerMeta(m.metadata));
    list.append(li);
  }
  el["transcript-empty"].hidden = transcript.length > 0;
  revealNewest();
}

function answerMeta(metadata) {
  const d = describeAnswer(metadata);
  const meta = document.createElement("span");
  meta.className = "meta";
  const confidence = document.createElement("span");
  confidence.dataset.testid = "answer-confidence";
  confidence.textContent = d.confidenceText;
  if (d.confidence !== null) confidence.dataset.value = String(d.confidence);
  const sources = document.createElement("span");
  sources.dataset.testid = "answer-sources";
  sources.dataset.count = String(d.sources.length);
  sources.textContent = d.sourcesText;
  meta.append(confidence, " · ", sources);
  if (d.collection) meta.append(` · ${d.collection}`);
  return meta;
}

function renderMessageList(node, messages) {
  node.textContent = "";
  for (const m of messages || []) {
    const li = messageItem(m);
    if (m.timestamp) li.title = fmtTime(m.timestamp);
    node.append(li);
  }
}

// `messageCount`: the session's count as the page last saw it (the context holds the newest only).
export function renderContext(ctx, messageCount) {
  layerBadge(el["context-storage"], ctx.storage);
  renderMessageList(el["context-messages"], ctx.messages);
  el["context-count"].textContent = contextNote((ctx.messages || []).length, messageCount);
  el["formatted-context"].textContent = ctx.formatted_context || "—";
  renderSummary(ctx.summary);
}

function renderSummary(summary) {
  if (summary && summary.text) {
    el.summary.hidden = false;
    el.summary.textContent = summary.text;
    el["summary-empty"].hidden = true;
    el["summary-meta"].textContent = `Covers ${summary.message_count} messages · updated ${fmtTime(summary.updated_at)}`;
  } else {
    el.summary.hidden = true;
    el.summary.textContent = "";
    el["summary-empty"].hidden = false;
    el["summary-meta"].textContent = "";
  }
}

export function renderSession(sessionId, ended) {
  el["session-id"].textContent = sessionId || "none yet";
  const badge = el["session-status"];
  badge.hidden = !sessionId;
  badge.textContent = ended ? "ended" : "active";
  badge.className = `badge ${ended ? "ended" : "active"}`;
}

export function renderAppended(res) {
  el["message-count"].textContent = String(res.message_count);
  layerBadge(el["storage-layer"], res.storage);
  yesNo(el.durable, res.durable);
  el["summary-updated"].textContent = res.summary_updated ? "yes" : "no";
}

// A new session (or none, after an erasure): every panel back to empty.
export function clearPanels() {
  renderTranscript([]);
  el["message-count"].textContent = "0";
  for (const id of ["storage-layer", "durable", "context-storage", "summary-updated"]) {
    el[id].className = "";
    el[id].textContent = "—";
  }
  renderContext({ storage: null, messages: [], summary: null, formatted_context: "" }, 0);
  el["context-storage"].textContent = "—";
  el["end-panel"].hidden = true;
  // The user stats belong to the session that ended: the next end reads them again.
  for (const id of ["stats-sessions", "stats-messages", "stats-queries", "stats-recent"]) el[id].textContent = "—";
  el["user-stats-status"].textContent = "waiting for the trigger…";
}

// `result`: end_session's answer; `before`: get_history just before the end.
export function renderEnd(result, before) {
  el["end-panel"].hidden = false;
  el["end-status"].textContent = result.status;
  el["end-reason"].textContent = result.end_reason || "—";
  el["end-reason-row"].hidden = !result.end_reason;
  el["end-message-count"].textContent = String(result.message_count);
  el["queries-recorded"].textContent = String(result.queries_recorded);
  el["end-summary"].textContent = (result.summary && result.summary.text) || "(no summary)";
  if (result.summary) renderSummary(result.summary);
  renderMessageList(el.history, before.messages);
  el["history-meta"].textContent =
    `(${before.messages.length} of ${result.message_count} messages, served by ${before.storage}; older ones live on in the summary)`;
  el["end-panel"].scrollIntoView({ block: "nearest" });
}

export function renderStats(s) {
  el["stats-sessions"].textContent = String(s.total_sessions);
  el["stats-messages"].textContent = String(s.total_messages);
  el["stats-queries"].textContent = String(s.total_queries);
  el["stats-recent"].textContent = `${s.recent_sessions.length} (newest: this one)`;
  el["user-stats-status"].textContent = "counted.";
}

export function renderReceipt(d) {
  el["receipt-sentence"].textContent = d.sentence;
  const list = el["receipt-counts"];
  list.textContent = "";
  for (const row of d.rows) {
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    dt.textContent = row.label;
    const dd = document.createElement("dd");
    dd.dataset.testid = `erased-${row.key}`;
    dd.textContent = String(row.value);
    div.append(dt, dd);
    list.append(div);
  }
  el["erase-receipt"].dataset.receiptId = d.receiptId;
  el["erase-receipt"].hidden = false;
  // The confirm panel that held the focus is gone: hand it to the receipt.
  document.getElementById("receipt-h").focus();
}

function layerUp(v) {
  if (v && typeof v === "object") return v.status === "up" || v.status === "ok" || v.ok === true;
  return v === true || v === "up" || v === "ok";
}

// The service's health: each layer up or down, or why it could not be read (`err`).
export function renderHealth(h, err) {
  if (!h) {
    el.health.textContent = err instanceof ApiError && err.kind !== "http" ? "unreachable" : `error (${err.code || "?"})`;
    return;
  }
  const layers = Object.entries(h.layers || {})
    .map(([k, v]) => `${k} ${layerUp(v) ? "✓" : "✗"}`)
    .join(" · ");
  el.health.textContent = `${h.status}${layers ? ` (${layers})` : ""}`;
}

// The "Delete my data" confirm panel: opened or closed, the word typed in it goes.
export function showEraseConfirm(open) {
  el["erase-confirm"].hidden = !open;
  el["erase-word"].value = "";
  el["delete-data-button"].setAttribute("aria-expanded", open ? "true" : "false");
}

// Whether the current session leaves a memory when it ends (null: no session).
export function renderRemembered(remembered) {
  const node = el["session-memory"];
  node.textContent = rememberedText(remembered);
  node.className = remembered === null || remembered === undefined ? "" : remembered ? "yes" : "no";
}

function memoryItem(m, { recalled, search, forgetting }) {
  const li = document.createElement("li");
  li.className = "memory";
  li.dataset.testid = "memory";
  li.dataset.sessionId = m.session_id;
  const head = document.createElement("div");
  head.className = "memory-head";
  const when = endedAt(m.ended_at);
  const time = document.createElement("time");
  time.dataset.testid = "memory-date";
  if (when) time.dateTime = when.iso;
  time.textContent = when ? when.text : "date unknown";
  head.append(time);
  if (search && m.score !== undefined) {
    const match = document.createElement("span");
    match.className = "badge";
    match.dataset.testid = "memory-match";
    match.textContent = matchNote(m.score);
    head.append(match);
  }
  if (recalled.has(m.session_id)) {
    const why = document.createElement("span");
    why.className = "badge recalled";
    why.dataset.testid = "memory-recalled";
    why.textContent = recallNote(recalled.get(m.session_id));
    head.append(why);
  }
  const text = document.createElement("p");
  text.className = "memory-text";
  text.dataset.testid = "memory-text";
  text.textContent = String(m.text ?? ""); // the user's own words: text, never markup
  const forget = document.createElement("button");
  forget.type = "button";
  forget.className = "danger small-button";
  forget.dataset.testid = "memory-forget";
  forget.dataset.sessionId = m.session_id;
  forget.textContent = forgetting.has(m.session_id) ? "Forgetting…" : "Forget";
  forget.disabled = forgetting.has(m.session_id);
  forget.setAttribute("aria-label", `Forget the memory of ${when ? when.text : "this chat"}`);
  li.append(head, text, forget);
  return li;
}

/**
 * The "What I remember" panel. `view`: {status: "loading"|"loaded"|"error", items, nextCursor,
 * recalled (session id -> score), search (null, or {q, items}), forgetting (session ids)}.
 */
export function renderMemories(view) {
  const panel = el["memory-panel"];
  panel.dataset.state = view.status;
  panel.setAttribute("aria-busy", view.status === "loading" ? "true" : "false");
  const search = view.search;
  const shown = search ? search.items : view.items;
  const list = el["memory-list"];
  list.textContent = "";
  for (const m of shown) list.append(memoryItem(m, { recalled: view.recalled, search: !!search, forgetting: view.forgetting }));
  el["memory-empty"].hidden = !!search || view.status !== "loaded" || view.items.length > 0;
  el["memory-more"].hidden = !!search || !view.nextCursor;
  el["memory-more"].disabled = view.status === "loading";
  el["memory-refresh"].disabled = view.status === "loading";
  el["memory-search-clear"].hidden = !search;
  el["memory-search-note"].hidden = !search;
  el["memory-search-note"].textContent = search ? searchSentence(search.q, search.items.length) : "";
  const recalled = recalledSentence(view.recalled);
  el["memory-recall-note"].hidden = !recalled;
  el["memory-recall-note"].textContent = recalled || "";
}

export function setMemoryStatus(text) {
  el["memory-status"].textContent = text || "";
}
