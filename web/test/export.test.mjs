// "Download my data": the export's pages followed and combined into one file, and the call
// that reads each page: `npm run check`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, createApi } from "../src/api.js";
import { combineExportPages, EXPORT_PAGE_SIZE, exportBlob, readAllExportPages } from "../src/export.js";

const session = (id, content) => ({
  session_id: id, status: "ended", created_at: 1, last_active_at: 2, ended_at: 3, end_reason: "user_ended",
  user_info: {}, summary: null, messages: [{ seq: 1, role: "user", content }], analytics: [],
});
const user = { total_sessions: 3, total_messages: 6, total_queries: 3, last_active_at: 2, recent_sessions: ["c", "b", "a"] };

test("export: every page is read, following next_cursor until null", async () => {
  const pages = {
    "": { user_id: "u1", user, sessions: [session("a", "q1"), session("b", "q2")], next_cursor: "c1" },
    c1: { user_id: "u1", sessions: [session("c", "q3")], next_cursor: "c2" },
    c2: { user_id: "u1", sessions: [], next_cursor: null },
  };
  const asked = [];
  const progress = [];
  const read = await readAllExportPages(
    async (cursor) => { asked.push(cursor); return pages[cursor ?? ""]; },
    (n, sessions) => progress.push([n, sessions]),
  );
  assert.deepEqual(asked, [null, "c1", "c2"]);
  assert.deepEqual(progress, [[1, 2], [2, 3], [3, 3]]);
  assert.equal(read.length, 3);
});

test("export: a cursor offered twice stops the download instead of looping", async () => {
  const again = async () => ({ user_id: "u1", sessions: [], next_cursor: "same" });
  await assert.rejects(readAllExportPages(again), /repeated a page cursor/);
});

test("export: one document with the user from the first page and every page's sessions, in order", () => {
  const doc = combineExportPages(
    [
      { user_id: "u1", user, sessions: [session("a", "q1"), session("b", "q2")], next_cursor: "c1" },
      { user_id: "u1", sessions: [session("c", "q3")], next_cursor: null },
    ],
    "2025-01-02T03:04:05.000Z",
  );
  assert.deepEqual(Object.keys(doc), ["user_id", "user", "sessions", "exported_at"]);
  assert.equal(doc.user_id, "u1");
  assert.deepEqual(doc.user, user);
  assert.deepEqual(doc.sessions.map((s) => s.session_id), ["a", "b", "c"]);
  assert.equal(doc.sessions[2].messages[0].content, "q3");
  assert.equal(doc.exported_at, "2025-01-02T03:04:05.000Z");
  assert.equal("next_cursor" in doc, false);
});

test("export: each session once (the later read wins), no user is null, mixed users refused", () => {
  const early = { ...session("r", "held"), status: "active", messages: [] };
  const doc = combineExportPages(
    [
      { user_id: "u1", sessions: [early, session("a", "q1")], next_cursor: "c1" },
      { user_id: "u1", sessions: [session("r", "held")], next_cursor: null },
    ],
    "t",
  );
  assert.deepEqual(doc.sessions.map((s) => s.session_id), ["r", "a"]);
  assert.equal(doc.sessions[0].messages[0].content, "held");
  assert.equal(doc.user, null);
  assert.throws(() => combineExportPages([{ user_id: "u1", sessions: [] }, { user_id: "u2", sessions: [] }], "t"), /different users/);
  assert.throws(() => combineExportPages([], "t"), /no page/);
});

test("export: the parts of a session split across pages are one session, in order, without `continues`", () => {
  const part = (id, seqs, continues) => ({
    ...session(id, "x"),
    messages: seqs.map((seq) => ({ seq, role: "user", content: `m${seq}` })),
    analytics: seqs.map((seq) => ({ seq, query: `q${seq}` })),
    continues,
  });
  const doc = combineExportPages(
    [
      { user_id: "u1", user, sessions: [part("a", [1], false), part("b", [1, 2], true)], next_cursor: "c1" },
      { user_id: "u1", sessions: [part("b", [3], true)], next_cursor: "c2" },
      { user_id: "u1", sessions: [part("b", [4, 5], false), part("c", [1], false)], next_cursor: null },
    ],
    "t",
  );
  assert.deepEqual(doc.sessions.map((s) => s.session_id), ["a", "b", "c"]);
  const b = doc.sessions[1];
  assert.deepEqual(b.messages.map((m) => m.seq), [1, 2, 3, 4, 5]);
  assert.deepEqual(b.analytics.map((q) => q.query), ["q1", "q2", "q3", "q4", "q5"]);
  assert.equal(doc.sessions.some((s) => "continues" in s), false);
  assert.throws(
    () => combineExportPages([{ user_id: "u1", sessions: [part("b", [1], true)], next_cursor: null }], "t"),
    /ended inside a session/,
  );
  assert.throws(
    () => combineExportPages([{ user_id: "u1", sessions: [part("b", [1], true), part("c", [1], false)] }], "t"),
    /did not continue/,
  );
});

test("export: the file is the document as indented JSON", async () => {
  const doc = { user_id: "u1", user: null, sessions: [session("a", "é <b>")], exported_at: "t" };
  const blob = exportBlob(doc);
  assert.match(blob.type, /^application\/json/);
  assert.deepEqual(JSON.parse(await blob.text()), doc);
});

test("API: export_my_data is a GET with the token in a header, limit and cursor in the query", async () => {
  const calls = [];
  const fetchImpl = async (url, init) => {
    calls.push({ url, init });
    return new Response(JSON.stringify({ user_id: "u1", sessions: [], next_cursor: null }), {
      status: 200,
      headers: { "content-type": "application/json", "Content-Disposition": 'attachment; filename="chat-memory-export.json"' },
    });
  };
  const api = createApi({ base: "/api", getToken: async () => "tok", fetchImpl });
  assert.deepEqual(await api.exportMyData({ limit: EXPORT_PAGE_SIZE, cursor: null }), { user_id: "u1", sessions: [], next_cursor: null });
  await api.exportMyData({ limit: 50, cursor: "abc/+=" });
  assert.equal(calls[0].url, "/api/export_my_data?limit=50");
  assert.equal(calls[1].url, "/api/export_my_data?limit=50&cursor=abc%2F%2B%3D");
  const { init } = calls[0];
  assert.equal(init.method, "GET");
  assert.equal(init.headers.Authorization, "Bearer tok");
  assert.equal(init.headers.Accept, "application/json");
  assert.equal(init.body, undefined);
});

test("API: an export error is an ApiError the page can show", async () => {
  const fetchImpl = async () => new Response(JSON.stringify({ error: { code: "unavailable", message: "try again shortly" } }), { status: 503 });
  const api = createApi({ base: "/api", getToken: async () => "t", fetchImpl });
  await assert.rejects(api.exportMyData({ limit: 50, cursor: null }), (e) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.fn, "export_my_data");
    assert.match(e.friendly, /temporarily unavailable/);
    return true;
  });
});
