// The admin page: answer quality and knowledge-base use over a range of UTC days, the
// low-confidence answers page by page (with a CSV download), and one session in full. It
// signs in as the console does; the admin functions decide who is an admin (the `admin`
// custom claim), and a 403 from them shows the "not an admin" panel. Every piece of data
// reaches the DOM through textContent only.

import { drawCharts } from "./admin-charts.js";
import {
  byCount,
  CursorStack,
  csvFilename,
  defaultRange,
  fieldRows,
  fillDays,
  fmtTimestamp,
  histogramLabels,
  MAX_PAGE_SIZE,
  pageSizeFrom,
  pct,
  rangeProblem,
  totals,
} from "./admin-model.js";
import { ApiError } from "./api.js";
import { loadFileConfig, resolveConfig } from "./config.js";
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

const state = {
  api: null,
  auth: null,
  uid: null,
  range: defaultRange(),
  pageSize: pageSizeFrom(window.location.search),
  pager: new CursorStack(),
  busy: false,
  charts: new Map(),
};

// ---------------------------------------------------------------------------------- helpers

function isNotAdmin(e) {
  return e instanceof ApiError && e.status === 403;
}

function td(text, className) {
  const c = document.createElement("td");
  c.textContent = text;
  if (className) c.className = className;
  return c;
}

function fillTable(tbody, rows) {
  tbody.replaceChildren(
    ...rows.map((cells) => {
      const tr = document.createElement("tr");
      tr.append(...cells.map((c) => td(String(c))));
      return tr;
    }),
  );
  labelCells(tbody);
}

// Each cell carries its column's name: on a phone a wide table is shown as one card per row,
// the names beside the values (admin.css, table.stack).
function labelCells(tbody) {
  const names = [...tbody.closest("table").querySelectorAll("thead th")].map((th) => th.textContent);
  for (const tr of tbody.rows) [...tr.cells].forEach((c, i) => (c.dataset.label = names[i] || ""));
}

function fillList(ul, items) {
  ul.replaceChildren(
    ...items.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }),
  );
}

const withBusy = busyRunner(state, updatePager);

// --------------------------------------------------------------------------------- report

function renderReport(report) {
  const { from, to } = state.range;
  const days = fillDays(from, to, report.days);
  const t = totals(days);
  $("report-range").textContent = `${from} to ${to} (${days.length} days, UTC)`;
  $("total-sessions").textContent = String(t.sessions);
  $("total-messages").textContent = String(t.messages);
  $("total-queries").textContent = String(t.queries);
  $("total-low").textContent = String(t.low_confidence);
  $("total-avg").textContent = pct(t.avg_confidence);

  fillTable($("activity-rows"), days.map((d) => [d.date, d.sessions, d.queries, d.messages]));
  fillTable($("confidence-rows"), days.map((d) => [d.date, pct(d.avg_confidence), d.low_confidence]));
  const labels = histogramLabels();
  fillTable($("histogram-rows"), report.confidence_histogram.map((n, i) => [labels[i], n]));
  fillTable($("kb-rows"), report.top_kb_entries.map((e) => [e.entry_id, e.uses]));
  $("kb-empty").hidden = report.top_kb_entries.length > 0;
  const reasons = byCount(report.end_reasons);
  fillTable($("end-reason-rows"), reasons);
  $("end-reasons-empty").hidden = reasons.length > 0;

  const collections = byCount(report.collections);
  fillList($("collections"), collections.length ? collections.map(([c, n]) => `${c}: ${n}`) : ["none in this range"]);
  fillList($("unused-entries"), report.unused_kb_entries);
  $("unused-count").textContent = `(${report.unused_kb_entries.length})`;

  drawCharts(state.charts, days, report);
}

// ----------------------------------------------------------------------- low-confidence table

function fetchPage(cursor) {
  return state.api.adminLowConfidence({ ...state.range, limit: state.pageSize, cursor });
}

function renderRows(items) {
  const body = $("low-rows");
  body.replaceChildren(
    ...items.map((it) => {
      const tr = document.createElement("tr");
      tr.dataset.testid = "low-row";
      tr.dataset.sessionId = it.session_id;
      tr.dataset.seq = String(it.seq);
      const open = document.createElement("button");
      open.type = "button";
      open.className = "link";
      open.dataset.testid = "open-session";
      const short = `${it.session_id.slice(0, 8)}…`;
      open.textContent = short;
      open.title = it.session_id;
      // The name begins with the visible text, as speech input users say what they see.
      open.setAttribute("aria-label", `${short} (open session ${it.session_id})`);
      open.addEventListener("click", () => openSession(it.session_id));
      const session = document.createElement("td");
      session.append(open);
      tr.append(
        td(fmtTimestamp(it.timestamp), "nowrap"),
        td(it.query ?? "—", "text"),
        td(it.response, "text"),
        td(pct(it.confidence), "num"),
        td(it.collection ?? "—"),
        session,
      );
      return tr;
    }),
  );
  labelCells(body);
  $("low-empty").hidden = items.length > 0 || state.pager.page > 1;
  updatePager();
}

function updatePager() {
  const p = state.pager;
  $("page-previous").disabled = state.busy || !p.hasPrevious;
  $("page-next").disabled = state.busy || !p.hasNext;
  $("csv-download").disabled = state.busy || $("low-rows").children.length === 0;
  $("low-page").textContent = `(page ${p.page}, ${$("low-rows").children.length} rows, up to ${state.pageSize} a page)`;
}

async function firstPage() {
  state.pager.reset();
  const res = await fetchPage(null);
  state.pager.loaded(res.next_cursor);
  renderRows(res.items);
}

async function nextPage() {
  if (state.busy || !state.pager.hasNext) return;
  clearError();
  try {
    const res = await withBusy("Reading the next page…", () => fetchPage(state.pager.next));
    if (res.items.length === 0) {
      // The last page was exactly full: the service offered a cursor to an empty page.
      state.pager.loaded(null);
      updatePager();
      setStatus("That was the last page.");
      return;
    }
    state.pager.advanced(res.next_cursor);
    renderRows(res.items);
    setStatus(`Page ${state.pager.page}.`);
  } catch (e) {
    showError(e, nextPage);
  }
}

async function previousPage() {
  if (state.busy || !state.pager.hasPrevious) return;
  clearError();
  try {
    const res = await withBusy("Reading the previous page…", () => fetchPage(state.pager.previousCursor));
    state.pager.wentBack(res.next_cursor);
    renderRows(res.items);
    setStatus(`Page ${state.pager.page}.`);
  } catch (e) {
    showError(e, previousPage);
  }
}

async function downloadCsv() {
  if (state.busy) return;
  clearError();
  try {
    const text = await withBusy("Preparing the CSV…", () =>
      state.api.adminLowConfidenceCsv({ ...state.range, limit: state.pageSize, cursor: state.pager.current }),
    );
    const filename = csvFilename(state.range.from, state.range.to, state.pager.page);
    saveFile(new Blob([text], { type: "text/csv;charset=utf-8" }), filename);
    setStatus(`Downloaded ${filename}.`);
  } catch (e) {
    showError(e, downloadCsv);
  }
}

// ---------------------------------------------------------------------------------- session

function renderSession(sid, res) {
  $("session-detail-id").textContent = sid;
  const fields = $("session-fields");
  fields.replaceChildren(
    ...fieldRows(res.session).map(([k, v]) => {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      dd.dataset.field = k;
      div.append(dt, dd);
      return div;
    }),
  );
  const analytics = res.analytics || [];
  $("session-analytics-count").textContent = `(${analytics.length})`;
  fillTable(
    $("session-analytics"),
    analytics.map((q) => [
      fmtTimestamp(q.timestamp),
      q.query ?? "—",
      pct(q.confidence),
      (q.sources || []).join(", ") || "none",
      q.collection ?? "—",
    ]),
  );
  const messages = res.final_messages || [];
  $("session-messages-count").textContent = `(${messages.length})`;
  $("session-messages").replaceChildren(
    ...messages.map(messageItem),
  );
  $("session-detail").hidden = false;
}

// The "One session" box is far down the page: what goes wrong there is said beside it.
const nearSessionBox = () => ({ near: $("session-form") });

async function openSession(sessionId) {
  const sid = String(sessionId || "").trim();
  clearError();
  if (!sid) {
    showError(new PageError("no_session_id", "Type a session id first (the 32 characters of an id from the table above)."), null, nearSessionBox());
    $("session-input").focus();
    return;
  }
  $("session-input").value = sid;
  try {
    const res = await withBusy("Opening the session…", () => state.api.adminSession(sid));
    renderSession(sid, res);
    setStatus(`Session ${sid} opened.`);
    $("session-panel").scrollIntoView({ block: "start" });
  } catch (e) {
    showError(e, () => openSession(sid), nearSessionBox());
  }
}

// ------------------------------------------------------------------------------- the page

async function loadAll() {
  await withBusy("Reading the report…", async () => {
    const [report] = await Promise.all([state.api.adminReport(state.range), firstPage()]);
    renderReport(report);
  });
  setStatus(`Report for ${state.range.from} to ${state.range.to}.`);
}

function showAdmin(yes) {
  document.body.dataset.role = yes ? "admin" : "not-admin";
  $("admin-main").hidden = !yes;
  $("not-admin").hidden = yes;
}

// The admin functions are the judge of who is an admin. A role granted since sign-in is in
// the next ID token only, so the first refusal fetches a fresh token and asks once more.
async function enter(freshToken = false) {
  clearError();
  try {
    if (freshToken) await state.auth.currentUser.getIdToken(true);
    await loadAll();
    showAdmin(true);
  } catch (e) {
    if (isNotAdmin(e) && !freshToken) return enter(true);
    if (isNotAdmin(e)) {
      showAdmin(false);
      setStatus("");
      return;
    }
    showError(e, () => enter());
  }
}

function applyRange(ev) {
  ev.preventDefault();
  const from = $("range-from").value;
  const to = $("range-to").value;
  const problem = rangeProblem(from, to);
  const size = Number.parseInt($("page-size").value, 10);
  const sizeProblem = Number.isInteger(size) && size >= 1 && size <= MAX_PAGE_SIZE ? null : `Rows per page: 1 to ${MAX_PAGE_SIZE}.`;
  $("range-problem").textContent = problem || sizeProblem || "";
  $("range-problem").hidden = !(problem || sizeProblem);
  if (problem || sizeProblem) return;
  state.range = { from, to };
  state.pageSize = size;
  enter();
}

async function signIn() {
  $("auth-status").textContent = "signing in…";
  const user = await signInUser(state.auth);
  state.uid = user.uid;
  $("auth-status").textContent = `${user.isAnonymous ? "anonymous" : user.email || "signed in"} · ${user.uid}`;
  $("auth-status").dataset.uid = user.uid;
  $("not-admin-uid").textContent = user.uid;
}

async function boot() {
  const config = resolveConfig(window.location, await loadFileConfig());
  $("config-note").textContent = configNote(config);
  ({ auth: state.auth, api: state.api } = connect(config));

  $("range-from").value = state.range.from;
  $("range-to").value = state.range.to;
  $("page-size").value = String(state.pageSize);
  $("range-form").addEventListener("submit", applyRange);
  $("page-next").addEventListener("click", nextPage);
  $("page-previous").addEventListener("click", previousPage);
  $("csv-download").addEventListener("click", downloadCsv);
  $("check-again").addEventListener("click", () => enter(true));
  $("session-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    openSession($("session-input").value);
  });
  wireErrorBanner();

  await start();
  document.body.dataset.ready = "true";
}

async function start() {
  try {
    await signIn();
  } catch (e) {
    $("auth-status").textContent = "not signed in";
    const why = (e && e.code) || (e && e.message) || e;
    showError(new Error(`Could not sign in (${why}). Check the network and that Firebase Auth (or its emulator) is running.`), start);
    return;
  }
  await enter();
}

boot().catch((e) => showError(e));
