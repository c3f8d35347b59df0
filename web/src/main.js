// The chat-memory console: signs in anonymously, holds one session, chats through the `chat`
// function (which stores the user's message, answers it and stores the answer) and shows what
// the memory service keeps as the conversation goes on; "Download my data" saves everything it
// holds about the user as one file, and "Delete my data" erases it all, once the user has
// confirmed. Every piece of user text and every answer reaches the DOM through textContent only.

import { ApiError } from "./api.js";
import { loadFileConfig, resolveConfig } from "./config.js";
import {
  clearPanels,
  el,
  layerBadge,
  renderAppended,
  renderControls,
  renderContext,
  renderEnd,
  renderHealth,
  renderReceipt,
  renderSession,
  renderStats,
  renderTranscript,
  showEraseConfirm,
} from "./console-view.js";
import { describeReceipt, erasureConfirmed } from "./erase.js";
import { combineExportPages, EXPORT_FILENAME, EXPORT_PAGE_SIZE, exportBlob, readAllExportPages } from "./export.js";
import { keepDraft, keepSession, keepTurn, keptDraft, keptSession, keptTurn } from "./kept.js";
import {
  busyRunner,
  clearError,
  configNote,
  connect,
  PageError,
  saveFile,
  setStatus,
  showError,
  signInUser,
  wireErrorBanner,
} from "./page.js";
import { turnFor, withMessages } from "./turn.js";

// The context and the history are read without a `max_messages` or a `limit`: the service
// then answers its whole window (MESSAGE_WINDOW) and as much history as it allows
// (HISTORY_MAX_LIMIT), so the page keeps no copy of either setting.
const AGENT_ID = "web-console";

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

wireErrorBanner();

const updateControls = () => renderControls(state);

function resetPanels() {
  state.transcript = [];
  state.messageCount = 0;
  setPending(null);
  clearPanels();
}

// ------------------------------------------------------------------------------- actions

const withBusy = busyRunner(state, updateControls);

function setPending(turn) {
  state.pendingTurn = turn;
  keepTurn(turn);
}

function rememberSession() {
  keepSession(state.sessionId ? { uid: state.uid, sessionId: state.sessionId, messageCount: state.messageCount } : null);
}

async function createSession() {
  const res = await state.api.createSession({ platform: "web", client: "chat-memory-console" });
  state.sessionId = res.session_id;
  state.ended = false;
  resetPanels();
  el["erase-receipt"].hidden = true;
  if (res.storage) layerBadge(el["storage-layer"], res.storage);
  rememberSession();
  renderSession(state.sessionId, state.ended);
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
  renderContext(ctx, state.messageCount);
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
    renderTranscript(state.transcript);
    state.messageCount = res.message_count;
    rememberSession();
    renderAppended(res);
    // Answered, so stored: only now may the typed text go (unless the user typed more meanwhile).
    if (input.value === turn.content) input.value = "";
    keepDraft(input.value);
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
  renderSession(state.sessionId, state.ended);
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
    renderEnd(result, before);
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
        renderStats(s);
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
  showEraseConfirm(true);
  updateControls();
  el["erase-word"].focus();
}

function closeEraseConfirm(returnFocus) {
  showEraseConfirm(false);
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
  keepDraft(null);
  renderSession(state.sessionId, state.ended);
  updateControls();
}

async function resumeSession(saved) {
  // After a reload: show the session we had, if it is still ours and still there.
  try {
    await withBusy("Restoring your session…", async () => {
      state.sessionId = saved.sessionId;
      renderSession(state.sessionId, state.ended);
      const h = await state.api.getHistory(state.sessionId);
      state.transcript = h.messages.map((m) => ({ seq: m.seq, role: m.role, content: m.content, metadata: m.metadata }));
      renderTranscript(state.transcript);
      const pending = keptTurn();
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
    renderSession(state.sessionId, state.ended);
    return false;
  }
}

async function checkHealth() {
  try {
    renderHealth(await state.api.health());
  } catch (e) {
    renderHealth(null, e);
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
  const saved = keptSession();
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
  input.value = keptDraft();
  input.addEventListener("input", () => keepDraft(input.value));
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
