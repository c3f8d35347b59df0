// The chat-memory console: signs in anonymously, holds one session, chats through the `chat`
// function (which stores the user's message, answers it and stores the answer) and shows what
// the memory service keeps as the conversation goes on; "Download my data" saves everything it
// holds about the user as one file, and "Delete my data" erases it all, once the user has
// confirmed. "What I remember" lists the user's memories of past sessions (marking the ones
// recalled into this conversation), finds them and forgets them; "Remember this chat" (beside
// "Start a new session") makes the next session a memory-off one when unchecked.
// Every piece of user text and every answer reaches the DOM through textContent only.

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
  renderMemories,
  renderNotice,
  renderReceipt,
  renderRemembered,
  renderSession,
  renderStats,
  renderTranscript,
  setMemoryStatus,
  showEraseConfirm,
} from "./console-view.js";
import { describeReceipt, erasureConfirmed } from "./erase.js";
import { combineExportPages, EXPORT_FILENAME, EXPORT_PAGE_SIZE, exportBlob, readAllExportPages } from "./export.js";
import { keepDraft, keepSession, keepTurn, keptDraft, keptSession, keptTurn } from "./kept.js";
import {
  awaitMemory,
  MEMORY_PAGE_SIZE,
  MEMORY_SEARCH_LIMIT,
  mergeMemories,
  recalledBySession,
  withoutMemory,
} from "./memories.js";
import {
  busyRunner,
  clearError,
  configNote,
  connect,
  describeError,
  PageError,
  retryable,
  saveFile,
  setStatus,
  showError,
  signInUser,
  wireErrorBanner,
} from "./page.js";
import { contentSize, turnFor, withMessages } from "./turn.js";

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
  // Whether the current session leaves a memory when it ends (null: no session), and whether
  // the next thing is a new chat (after the end or an erasure: "Remember this chat" is shown).
  remembered: null,
  nextChat: false,
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
  contextRead++; // a read-back still on its way belongs to the panels just cleared
  state.transcript = [];
  state.messageCount = 0;
  setPending(null);
  clearPanels();
  setRecalled([]);
}

// ------------------------------------------------------------------------------- actions

const withBusy = busyRunner(state, updateControls);

function setPending(turn) {
  state.pendingTurn = turn;
  keepTurn(turn);
}

function rememberSession() {
  keepSession(
    state.sessionId
      ? { uid: state.uid, sessionId: state.sessionId, messageCount: state.messageCount, memory: state.remembered !== false }
      : null,
  );
}

async function createSession() {
  // "Remember this chat" unchecked: a memory-off session (no memory left, none recalled).
  const memory = el["memory-switch"].checked;
  const res = await state.api.createSession({ platform: "web", client: "chat-memory-console" }, { memory });
  state.sessionId = res.session_id;
  state.ended = false;
  state.nextChat = false;
  state.remembered = memory;
  renderRemembered(state.remembered);
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
  setRecalled(ctx.memories);
  return ctx;
}

// Reads the context back after a turn. The page is not busy meanwhile (the next message may
// go at once); when several reads overlap, only the newest one's answer is drawn.
let contextRead = 0;

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
  // The service's limit, in UTF-8 bytes: a message over it is refused here, whole and kept.
  const size = contentSize(text);
  if (!size.ok) {
    showError(new PageError("content_too_large", size.problem));
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
    setRecalled(res.memories);
    renderNotice(null);
    // Answered, so stored: only now may the typed text go (unless the user typed more meanwhile).
    if (input.value === turn.content) input.value = "";
    keepDraft(input.value);
    updateControls();
  } catch (e) {
    if (e instanceof ApiError && e.code === "failed_precondition") markEnded();
    showError(e, state.ended ? null : send);
    return;
  }
  await showContext(`Answered. ${state.messageCount} messages in this session.`);
}

async function showContext(done) {
  const mine = ++contextRead;
  const sessionId = state.sessionId;
  setStatus("Reading the context back…");
  try {
    const ctx = await state.api.getContext(sessionId);
    if (mine !== contextRead || sessionId !== state.sessionId) return; // a newer read is on its way
    renderContext(ctx, state.messageCount);
    setRecalled(ctx.memories);
    if (!state.busy) setStatus(done);
  } catch (e) {
    if (mine !== contextRead || state.busy) return;
    showError(e, () => showContext(done));
  }
}

function markEnded() {
  contextRead++;
  state.ended = true;
  state.nextChat = true;
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
    const sessionId = state.sessionId;
    await loadUserStats();
    // The trigger writes a remembered session's memory with the stats it counts: the panel
    // re-reads the list (a few times at most, should the memory lag behind).
    const remembered = state.remembered !== false && result.message_count > 0;
    await loadMemories({ awaitSession: remembered ? sessionId : null });
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
    const n = doc.sessions.length;
    setStatus(`Downloaded ${EXPORT_FILENAME}: ${n} ${n === 1 ? "session" : "sessions"}.`);
  } catch (e) {
    showError(e, downloadMyData);
  }
}

// ------------------------------------------------------------------------ what I remember

// The panel's view of the user's memories; its reads do not make the page busy (the chat goes
// on meanwhile). When reads overlap, only the newest one's answer is drawn.
const memoryView = {
  status: "idle",
  items: [],
  nextCursor: null,
  recalled: new Map(), // session id -> score: recalled into the current conversation
  search: null, // {q, items} while a search's result is shown
  forgetting: new Set(),
};
let memoryRead = 0;
const drawMemories = () => renderMemories(memoryView);

// The memories recalled into this conversation: the latest get_context or chat answer's.
function setRecalled(memories) {
  memoryView.recalled = recalledBySession(memories);
  drawMemories();
}

function showMemoryPage(page, { append = false } = {}) {
  memoryView.items = mergeMemories(append ? memoryView.items : [], page);
  memoryView.nextCursor = (page && page.next_cursor) || null;
  memoryView.status = "loaded";
  drawMemories();
}

function memoryFailed(what, e) {
  memoryView.status = "error";
  drawMemories();
  setMemoryStatus(`Could not ${what}: ${describeError(e).text}`);
}

/**
 * Read the first page of the user's memories again (leaving a search). `awaitSession`: a
 * session just ended whose memory the trigger is about to write: read again, a few times at
 * most, until it is there.
 */
async function loadMemories({ awaitSession = null } = {}) {
  if (!state.uid) return;
  const mine = ++memoryRead;
  memoryView.status = "loading";
  memoryView.search = null;
  el["memory-search-input"].value = "";
  drawMemories();
  setMemoryStatus(awaitSession ? "Waiting for this chat's memory…" : "Reading what I remember…");
  const stillWanted = () => mine === memoryRead;
  const read = async () => {
    const page = await state.api.listMemories({ limit: MEMORY_PAGE_SIZE });
    if (stillWanted()) showMemoryPage(page);
    return page;
  };
  try {
    if (!awaitSession) {
      await read();
      if (stillWanted()) setMemoryStatus("");
      return;
    }
    const { found, stopped } = await awaitMemory(read, awaitSession, { stillWanted });
    if (stopped || !stillWanted()) return;
    setMemoryStatus(
      found
        ? "This chat's memory is listed."
        : "This chat's memory is not listed yet (it is written a moment after the end): press Refresh in a while.",
    );
  } catch (e) {
    if (stillWanted()) memoryFailed("read your memories", e);
  }
}

async function loadMoreMemories() {
  if (!state.uid || !memoryView.nextCursor || memoryView.status === "loading") return;
  const mine = ++memoryRead;
  const cursor = memoryView.nextCursor;
  memoryView.status = "loading";
  drawMemories();
  setMemoryStatus("Reading older memories…");
  try {
    const page = await state.api.listMemories({ limit: MEMORY_PAGE_SIZE, cursor });
    if (mine !== memoryRead) return;
    showMemoryPage(page, { append: true });
    setMemoryStatus("");
  } catch (e) {
    if (mine === memoryRead) memoryFailed("read older memories", e);
  }
}

async function searchMemories() {
  const q = el["memory-search-input"].value.trim();
  if (!q) {
    loadMemories();
    return;
  }
  if (!state.uid) return;
  const mine = ++memoryRead;
  memoryView.status = "loading";
  drawMemories();
  setMemoryStatus("Searching your memories…");
  try {
    const page = await state.api.searchMemories({ q, limit: MEMORY_SEARCH_LIMIT });
    if (mine !== memoryRead) return;
    memoryView.search = { q, items: mergeMemories([], page) };
    memoryView.status = "loaded";
    drawMemories();
    setMemoryStatus("");
  } catch (e) {
    if (mine === memoryRead) memoryFailed("search your memories", e);
  }
}

// "Forget": delete_memory, and the memory leaves the panel. A 404 means it is gone already
// (another tab forgot it, or an erasure): it leaves the panel all the same.
async function forgetMemory(sessionId) {
  if (!state.uid || memoryView.forgetting.has(sessionId)) return;
  memoryView.forgetting.add(sessionId);
  drawMemories();
  setMemoryStatus("Forgetting…");
  let note;
  let gone = false;
  try {
    await state.api.deleteMemory(sessionId);
    gone = true;
    note = "Forgotten: that memory is deleted and will not be recalled again.";
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      gone = true;
      note = "That memory was already gone.";
    } else {
      note = `Could not forget it: ${describeError(e).text}`;
    }
  }
  memoryView.forgetting.delete(sessionId);
  const wasRecalled = memoryView.recalled.has(sessionId);
  if (gone) {
    memoryView.items = withoutMemory(memoryView.items, sessionId);
    if (memoryView.search) memoryView.search.items = withoutMemory(memoryView.search.items, sessionId);
  }
  drawMemories();
  setMemoryStatus(note);
  // The service dropped it from this conversation's recall too: show the context as it is now.
  if (gone && wasRecalled && state.sessionId && !state.ended) showContext("Forgotten: the context no longer recalls it.");
}

function wireMemoryPanel() {
  el["memory-refresh"].addEventListener("click", () => loadMemories());
  el["memory-more"].addEventListener("click", loadMoreMemories);
  el["memory-search"].addEventListener("submit", (ev) => {
    ev.preventDefault();
    searchMemories();
  });
  el["memory-search-clear"].addEventListener("click", () => loadMemories());
  el["memory-list"].addEventListener("click", (ev) => {
    const button = ev.target instanceof Element ? ev.target.closest('[data-testid="memory-forget"]') : null;
    if (button && button.dataset.sessionId) forgetMemory(button.dataset.sessionId);
  });
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
  loadMemories(); // erased with the rest
}

// The session is gone on the service: the page drops it and everything it kept of it.
function forgetSession() {
  state.sessionId = null;
  state.ended = false;
  state.nextChat = true;
  state.remembered = null;
  renderRemembered(state.remembered);
  resetPanels();
  rememberSession();
  el["composer-input"].value = "";
  keepDraft(null);
  renderSession(state.sessionId, state.ended);
  updateControls();
}

// After a reload: show the session we had (it is still ours and still there), its transcript
// and its context. Throws what the service answered when it cannot.
async function resumeSession(saved) {
  state.sessionId = saved.sessionId;
  state.remembered = saved.memory !== false;
  renderRemembered(state.remembered);
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
}

// Why the service will never give this session back (it answered a refusal, a 4xx other
// than 401/408/429), or null when it may yet (no answer, a timeout, a 5xx).
function whyLost(e) {
  if (!(e instanceof ApiError) || retryable(e) || e.status === 401) return null;
  if (e.code === "not_found") return "it no longer exists";
  if (e.code === "permission_denied") return "it belongs to another user";
  if (e.code === "session_expired") return "its memory expired";
  if (e.code === "failed_precondition") return "it has ended";
  return e.message || e.code;
}

async function restoreSession(saved) {
  clearError();
  try {
    await withBusy("Restoring your session…", () => resumeSession(saved));
    setStatus("Session restored.");
    return;
  } catch (e) {
    const why = whyLost(e);
    if (why === null) {
      // The session is likely still there: keep it and let the user try again. Starting
      // another here would take a slot of the user's session cap at every failed reload.
      showError(e, () => restoreSession(saved));
      return;
    }
    // Gone for good: one new session, kept at once (the next reload restores that one), and
    // the user told, rather than a new session in the old one's place without a word.
    resetPanels();
    state.sessionId = null;
    state.remembered = null;
    renderRemembered(state.remembered);
    rememberSession();
    renderSession(state.sessionId, state.ended);
    await startSession();
    const old = `${String(saved.sessionId).slice(0, 8)}…`;
    renderNotice(
      state.sessionId
        ? `Your previous session (${old}) could not be restored: ${why}. A new session was started.`
        : `Your previous session (${old}) could not be restored: ${why}.`,
    );
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
    el["auth-status"].title = el["auth-status"].textContent;
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
  loadMemories(); // beside the session's start or restore, not before it
  const saved = keptSession();
  if (saved && saved.uid === state.uid && saved.sessionId) return restoreSession(saved);
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
  updateControls();
  input.addEventListener("input", () => {
    keepDraft(input.value);
    updateControls(); // the byte counter, and Send off while the message is over the limit
  });
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
  wireMemoryPanel();
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
