// The chat-memory console: signs in anonymously, holds one session, chats through the `chat`
// function (which stores the user's message, answers it and stores the answer) and shows what
// the memory service keeps as the conversation goes on; "Download my data" saves everything it
// holds about the user as one file, and "Delete my data" erases it all, once the user has
// confirmed. Every piece of user text and every answer reaches the DOM through textContent only.

import { ApiError } from "./api.js";
import { loadFileConfig, resolveConfig } from "./config.js";
import { describeReceipt, erasureConfirmed } from "./erase.js";
import { combineExportPages, EXPORT_FILENAME, EXPORT_PAGE_SIZE, exportBlob, readAllExportPages } from "./export.js";
import {
  $,
  busyRunner,
  clearError,
  configNote,
  connect,
  messageItem,
  PageError,
  saveFile,
  setStatus,
  showError,
  signInUser,
  wireErrorBanner,
} from "./page.js";
import { contextNote, describeAnswer, parsePending, turnFor, withMessages } from "./turn.js";

// The context and the history are read without a `max_messages` or a `limit`: the service
// then answers its whole window (MESSAGE_WINDOW) and as much history as it allows
// (HISTORY_MAX_LIMIT), so the page keeps no copy of either setting.
const AGENT_ID = "web-console";
const DRAFT_KEY = "chat-memory.draft";
const SESSION_KEY = "chat-memory.session";
const PENDING_KEY = "chat-memory.pending";

const el = {};
for (const id of [
  "auth-status", "session-id", "session-status", "health", "error-banner", "error-message", "error-retry",
  "error-dismiss", "transcript", "transcript-empty", "composer", "composer-input", "send-button",
  "end-session-button", "new-session-button", "message-count", "storage-layer", "durable",
  "context-storage", "summary-updated", "summary-empty", "summary", "summary-meta", "context-count",
  "context-messages", "formatted-context", "end-panel", "end-status", "end-reason", "end-message-count",
  "queries-recorded", "end-summary", "history-meta", "history", "history-after", "end-reason-row", "config-note",
  "user-stats-status", "stats-sessions", "stats-messages", "stats-queries", "stats-recent", "download-data-button",
  "delete-data-button", "erase-confirm", "erase-word", "erase-submit", "erase-cancel", "erase-receipt",
  "receipt-sentence", "receipt-counts",
]) {
  el[id] = $(id);
}

const state = {
  api: null,
  auth: null,
  uid: null,
  sessionId: null,
  ended: false,
  busy: false,
  messageCount: 0,
  // A turn sent but not answered yet. A retry (even after a reload) reuses its
  // client_message_id, so the service stores the question once and asks the responder once.
  pendingTurn: null,
  transcript: [],
};

// ---------------------------------------------------------------------------------- helpers

function safeStorage(fn) {
  try {
    return fn(window.sessionStorage);
  } catch {
    return null; // storage disabled (privacy mode): the page still works
  }
}

function fmtTime(ts) {
  if (ts === null || ts === undefined) return "";
  const d = new Date(typeof ts === "number" ? (ts < 1e12 ? ts * 1000 : ts) : ts);
  return Number.isNaN(d.getTime()) ? String(ts) : d.toLocaleTimeString();
}

function layerBadge(node, layer) {
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

wireErrorBanner();

function updateControls() {
  const ready = !!state.sessionId && !state.ended;
  el["composer-input"].disabled = !state.uid || state.ended;
  // Without a session (after an erasure) the next message starts one.
  el["send-button"].disabled = !state.uid || state.ended || state.busy;
  el["end-session-button"].disabled = !ready || state.busy;
  el["new-session-button"].hidden = !state.ended;
  el["download-data-button"].disabled = !state.uid || state.busy;
  el["delete-data-button"].disabled = !state.uid || state.busy;
  el["erase-submit"].disabled = state.busy || !erasureConfirmed(el["erase-word"].value);
  el["composer"].setAttribute("aria-busy", state.busy ? "true" : "false");
}

// ------------------------------------------------------------------------------- rendering

function renderTranscript() {
  const list = el.transcript;
  list.textContent = "";
  for (const m of state.transcript) {
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
  el["transcript-empty"].hidden = state.transcript.length > 0;
  list.scrollTop = list.scrollHeight;
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

function renderContext(ctx) {
  layerBadge(el["context-storage"], ctx.storage);
  renderMessageList(el["context-messages"], ctx.messages);
  el["context-count"].textContent = contextNote((ctx.messages || []).length, state.messageCount);
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

function renderAppend(res) {
  state.messageCount = res.message_count;
  rememberSession();
  el["message-count"].textContent = String(res.message_count);
  layerBadge(el["storage-layer"], res.storage);
  yesNo(el.durable, res.durable);
  el["summary-updated"].textContent = res.summary_updated ? "yes" : "no";
}

function renderSession() {
  el["session-id"].textContent = state.sessionId || "none yet";
  const badge = el["session-status"];
  badge.hidden = !state.sessionId;
  badge.textContent = state.ended ? "ended" : "active";
  badge.className = `badge ${state.ended ? "ended" : "active"}`;
}

function resetPanels() {
  state.transcript = [];
  state.messageCount = 0;
  setPending(null);
  renderTranscript();
  el["message-count"].textContent = "0";
  for (const id of ["storage-layer", "durable", "context-storage", "summary-updated"]) {
    el[id].className = "";
    el[id].textContent = "—";
  }
  renderContext({ storage: null, messages: [], summary: null, formatted_context: "" });
  el["context-storage"].textContent = "—";
  el["end-panel"].hidden = true;
}

// ------------------------------------------------------------------------------- actions

const withBusy = busyRunner(state, updateControls);

function setPending(turn) {
  state.pendingTurn = turn;
  safeStorage((s) => (turn ? s.setItem(PENDING_KEY, JSON.stringify(turn)) : s.removeItem(PENDING_KEY)));
}

function rememberSession() {
  safeStorage((s) =>
    state.sessionId
      ? s.setItem(SESSION_KEY, JSON.stringify({ uid: state.uid, sessionId: state.sessionId, messageCount: state.messageCount }))
      : s.removeItem(SESSION_KEY),
  );
}

async function createSession() {
  const res = await state.api.createSession({ platform: "web", client: "chat-memory-console" });
  state.sessionId = res.session_id;
  state.ended = false;
  resetPanels();
  el["erase-receipt"].hidden = true;
  if (res.storage) layerBadge(el["storage-layer"], res.storage);
  rememberSession();
  renderSession();
}

async function startSession() {
  clearError();
  try {
    await withBusy("Creating a session…", createSession);
    setStatus("Session ready.");
    el["composer-input"].focus();
  } catch (e) {
    showError(e, startSession);
  }
}

async function refreshContext() {
  const ctx = await state.api.getContext(state.sessionId);
  renderContext(ctx);
  return ctx;
}

async function send() {
  if (state.busy || !state.uid || state.ended) return;
  const input = el["composer-input"];
  const text = input.value;
  clearError();
  if (!text.trim()) {
    setStatus("Type a message first.");
    input.focus();
    return;
  }
  if (!state.sessionId) {
    try {
      await withBusy("Creating a session…", createSession);
    } catch (e) {
      showError(e, send);
      return;
    }
  }
  const turn = turnFor(state.pendingTurn, state.sessionId, text);
  setPending(turn);
  try {
    const res = await withBusy("The assistant is answering…", () => state.api.chat(turn));
    setPending(null);
    state.transcript = withMessages(state.transcript, [
      { seq: res.user_seq, role: "user", content: turn.content },
      { seq: res.answer.seq, role: "assistant", content: res.answer.content, metadata: res.answer.metadata },
    ]);
    renderTranscript();
    renderAppend(res);
    // Answered, so stored: only now may the typed text go (unless the user typed more meanwhile).
    if (input.value === turn.content) input.value = "";
    safeStorage((s) => s.setItem(DRAFT_KEY, input.value));
  } catch (e) {
    if (e instanceof ApiError && e.code === "failed_precondition") markEnded();
    showError(e, state.ended ? null : send);
    return;
  }
  await showContext(`Answered. ${state.messageCount} messages in this session.`);
}

async function showContext(done) {
  try {
    await withBusy("Reading the context back…", refreshContext);
    setStatus(done);
  } catch (e) {
    showError(e, () => showContext(done));
  }
}

function markEnded() {
  state.ended = true;
  renderSession();
  updateControls();
}

async function endSession() {
  if (state.busy || !state.sessionId || state.ended) return;
  clearError();
  try {
    const { before, result } = await withBusy("Ending the session…", async () => {
      // What the memory holds just before the end (after it, the hot copy is released).
      const held = await state.api.getHistory(state.sessionId);
      const res = await state.api.endSession(state.sessionId, AGENT_ID);
      return { before: held, result: res };
    });
    markEnded();
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
    await loadHistoryAfter();
    await loadUserStats();
  } catch (e) {
    showError(e, state.ended ? loadHistoryAfter : endSession);
  }
}

async function loadHistoryAfter() {
  try {
    const h = await withBusy("Checking what the memory keeps after the end…", () =>
      state.api.getHistory(state.sessionId),
    );
    el["history-after"].textContent = `${h.messages.length} messages (served by ${h.storage})`;
    setStatus("Session ended. Analytics written.");
    return h;
  } catch (e) {
    showError(e, loadHistoryAfter);
    return null;
  }
}

// The trigger runs after the end, asynchronously: poll a few times until it has counted
// this session (it appears in recent_sessions), then show the totals.
async function loadUserStats(attempts = 15) {
  for (let i = 0; i < attempts; i++) {
    try {
      const s = await state.api.getUserStats();
      if ((s.recent_sessions || []).includes(state.sessionId)) {
        el["stats-sessions"].textContent = String(s.total_sessions);
        el["stats-messages"].textContent = String(s.total_messages);
        el["stats-queries"].textContent = String(s.total_queries);
        el["stats-recent"].textContent = `${s.recent_sessions.length} (newest: this one)`;
        el["user-stats-status"].textContent = "counted.";
        return s;
      }
    } catch (e) {
      el["user-stats-status"].textContent = `could not read them (${e.message || e}).`;
      return null;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  el["user-stats-status"].textContent = "not counted yet (the trigger may be slow); reload later.";
  return null;
}

async function downloadMyData() {
  if (state.busy || !state.uid) return;
  clearError();
  try {
    const doc = await withBusy("Reading your data…", async () => {
      const pages = await readAllExportPages(
        (cursor) => state.api.exportMyData({ limit: EXPORT_PAGE_SIZE, cursor }),
        (n, sessions) => setStatus(`Reading your data… page ${n}, ${sessions} sessions so far.`),
      );
      return combineExportPages(pages, new Date().toISOString());
    });
    // The page reads every page of the export and hands the browser one file.
    saveFile(exportBlob(doc), EXPORT_FILENAME);
    setStatus(`Downloaded ${EXPORT_FILENAME}: ${doc.sessions.length} sessions.`);
  } catch (e) {
    showError(e, downloadMyData);
  }
}

// ------------------------------------------------------------------------- delete my data

function openEraseConfirm() {
  if (state.busy || !state.uid) return;
  clearError();
  el["erase-word"].value = "";
  el["erase-confirm"].hidden = false;
  el["delete-data-button"].setAttribute("aria-expanded", "true");
  updateControls();
  el["erase-word"].focus();
}

function closeEraseConfirm(returnFocus) {
  el["erase-confirm"].hidden = true;
  el["erase-word"].value = "";
  el["delete-data-button"].setAttribute("aria-expanded", "false");
  updateControls();
  if (returnFocus) el["delete-data-button"].focus();
}

async function eraseMyData() {
  if (state.busy || !state.uid) return;
  clearError();
  closeEraseConfirm(false);
  let receipt;
  try {
    receipt = await withBusy("Erasing your data from every store…", () => state.api.deleteMyData());
  } catch (e) {
    // "Try again" repeats the same call: the service finishes what it started.
    showError(e, eraseMyData);
    return;
  }
  const d = describeReceipt(receipt);
  if (!d.complete) {
    showError(new ApiError({ kind: "http", status: 200, code: "unavailable", message: "incomplete", fn: "delete_my_data" }), eraseMyData);
    return;
  }
  forgetSession();
  renderReceipt(d);
  setStatus(d.sentence);
}

// The session is gone on the service: the page drops it and everything it kept of it.
function forgetSession() {
  state.sessionId = null;
  state.ended = false;
  resetPanels();
  rememberSession();
  el["composer-input"].value = "";
  safeStorage((s) => s.removeItem(DRAFT_KEY));
  renderSession();
  updateControls();
}

function renderReceipt(d) {
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

async function resumeSession(saved) {
  // After a reload: show the session we had, if it is still ours and still there.
  try {
    await withBusy("Restoring your session…", async () => {
      state.sessionId = saved.sessionId;
      renderSession();
      const h = await state.api.getHistory(state.sessionId);
      state.transcript = h.messages.map((m) => ({ seq: m.seq, role: m.role, content: m.content, metadata: m.metadata }));
      renderTranscript();
      const pending = safeStorage((s) => parsePending(s.getItem(PENDING_KEY)));
      state.pendingTurn = pending && pending.sessionId === state.sessionId ? pending : null;
      // The service keeps a window of recent messages: the count we saw last may be larger.
      state.messageCount = Math.max(h.messages.length, Number(saved.messageCount) || 0);
      el["message-count"].textContent = String(state.messageCount);
      await refreshContext();
    });
    setStatus("Session restored.");
    return true;
  } catch {
    state.sessionId = null;
    rememberSession();
    renderSession();
    return false;
  }
}

function layerUp(v) {
  if (v && typeof v === "object") return v.status === "up" || v.status === "ok" || v.ok === true;
  return v === true || v === "up" || v === "ok";
}

async function checkHealth() {
  try {
    const h = await state.api.health();
    const layers = Object.entries(h.layers || {})
      .map(([k, v]) => `${k} ${layerUp(v) ? "✓" : "✗"}`)
      .join(" · ");
    el.health.textContent = `${h.status}${layers ? ` (${layers})` : ""}`;
  } catch (e) {
    el.health.textContent = e instanceof ApiError && e.kind !== "http" ? "unreachable" : `error (${e.code || "?"})`;
  }
}

async function signIn() {
  clearError();
  el["auth-status"].textContent = "signing in…";
  try {
    const user = await signInUser(state.auth);
    state.uid = user.uid;
    el["auth-status"].textContent = `anonymous · ${user.uid}`;
    el["auth-status"].dataset.uid = user.uid;
  } catch (e) {
    el["auth-status"].textContent = "not signed in";
    const why = (e && e.code) || (e && e.message) || e;
    showError(
      new PageError(
        "sign_in_failed",
        `Could not sign in anonymously (${why}). Check the network and that Firebase Auth (or its emulator) is running.`,
      ),
      () => signIn().then(afterSignIn),
    );
    return false;
  }
  updateControls();
  return true;
}

async function afterSignIn(ok) {
  if (!ok) return;
  const saved = safeStorage((s) => JSON.parse(s.getItem(SESSION_KEY) || "null"));
  if (saved && saved.uid === state.uid && saved.sessionId && (await resumeSession(saved))) return;
  await startSession();
}

// ----------------------------------------------------------------------------------- boot

async function boot() {
  const config = resolveConfig(window.location, await loadFileConfig());
  el["config-note"].textContent = configNote(config);
  ({ auth: state.auth, api: state.api } = connect(config));

  // The draft survives a reload; it is cleared only once the service stored it.
  const input = el["composer-input"];
  input.value = safeStorage((s) => s.getItem(DRAFT_KEY)) || "";
  input.addEventListener("input", () => safeStorage((s) => s.setItem(DRAFT_KEY, input.value)));
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      send();
    }
  });
  el.composer.addEventListener("submit", (ev) => {
    ev.preventDefault();
    send();
  });
  el["end-session-button"].addEventListener("click", endSession);
  el["new-session-button"].addEventListener("click", startSession);
  el["download-data-button"].addEventListener("click", downloadMyData);
  el["delete-data-button"].addEventListener("click", openEraseConfirm);
  el["erase-word"].addEventListener("input", updateControls);
  el["erase-cancel"].addEventListener("click", () => closeEraseConfirm(true));
  el["erase-confirm"].addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") closeEraseConfirm(true);
  });
  el["erase-confirm"].addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (erasureConfirmed(el["erase-word"].value)) eraseMyData();
  });

  checkHealth();
  await afterSignIn(await signIn());
  document.body.dataset.ready = "true";
}

boot().catch((e) => showError(e));
