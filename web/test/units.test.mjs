// Unit checks of the page's pure parts (config, API client, chat turns, the context's count): `npm run check`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, createApi } from "../src/api.js";
import { resolveConfig } from "../src/config.js";
import {
  CLIENT_MESSAGE_ID,
  contentSize,
  contextNote,
  describeAnswer,
  MAX_CONTENT_BYTES,
  newTurnId,
  parsePending,
  turnFor,
  withMessages,
} from "../src/turn.js";

test("defaults: same-origin /api; Auth emulator only on loopback", () => {
  const local = resolveConfig({ hostname: "127.0.0.1", search: "" }, null);
  assert.equal(local.apiBase, "/api");
  assert.equal(local.authEmulatorUrl, "http://127.0.0.1:9099");
  const prod = resolveConfig({ hostname: "chat.example.com", search: "" }, null);
  assert.equal(prod.authEmulatorUrl, null);
  assert.equal(prod.firebase.projectId, "demo-chat-memory");
});

test("config.json overrides defaults", () => {
  const c = resolveConfig({ hostname: "chat.example.com", search: "" }, {
    apiBase: "https://x.example/fn/", authEmulator: "off", firebase: { apiKey: "k", projectId: "p" },
  });
  assert.equal(c.apiBase, "https://x.example/fn");
  assert.equal(c.authEmulatorUrl, null);
  assert.deepEqual([c.firebase.apiKey, c.firebase.projectId], ["k", "p"]);
});

test("query overrides are honoured on loopback only", () => {
  const search = "?api=http://127.0.0.1:5101/demo-chat-memory/us-central1&auth_emulator=http://127.0.0.1:9199";
  const local = resolveConfig({ hostname: "localhost", search }, null);
  assert.equal(local.apiBase, "http://127.0.0.1:5101/demo-chat-memory/us-central1");
  assert.equal(local.authEmulatorUrl, "http://127.0.0.1:9199");
  const prod = resolveConfig({ hostname: "chat.example.com", search }, null);
  assert.equal(prod.apiBase, "/api");
  assert.equal(prod.authEmulatorUrl, null);
  assert.deepEqual(prod.ignoredParams, ["api", "auth_emulator"]);
  const bad = resolveConfig({ hostname: "localhost", search: "?api=javascript:alert(1)" }, null);
  assert.equal(bad.apiBase, "/api");
});

function fakeFetch(handler) {
  const calls = [];
  const f = async (url, init) => {
    calls.push({ url, init });
    return handler(url, init, calls.length);
  };
  f.calls = calls;
  return f;
}
const json = (status, body, headers = {}) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

test("API: a chat turn is one POST to chat with the turn's id; the page writes no message itself", async () => {
  const answer = { content: "Use Forgot password.", seq: 2, metadata: { confidence: 0.86, sources: ["account-reset-password"], collection: "account_security" } };
  const f = fakeFetch(() => json(201, { session_id: "s", answer, user_seq: 1, message_count: 2, summary_updated: false, storage: "redis", durable: true }));
  const api = createApi({ base: "/api", getToken: async () => "tok", fetchImpl: f });
  const res = await api.chat({ sessionId: "s", content: "hi", clientMessageId: "t-1" });
  assert.deepEqual(res.answer, answer);
  const { url, init } = f.calls[0];
  assert.equal(url, "/api/chat");
  assert.equal(init.method, "POST");
  assert.equal(init.headers.Authorization, "Bearer tok");
  assert.equal(init.headers["Content-Type"], "application/json");
  assert.deepEqual(JSON.parse(init.body), { session_id: "s", content: "hi", client_message_id: "t-1" });
  assert.equal(api.appendMessage, undefined);
  await api.getContext("abc", 8);
  assert.equal(f.calls[1].url, "/api/get_context?session_id=abc&max_messages=8");
});

test("API: the console's reads leave the window and the history's size to the service", async () => {
  const f = fakeFetch(() => json(200, { ok: 1 }));
  const api = createApi({ base: "/api", getToken: async () => null, fetchImpl: f });
  await api.getContext("abc");
  await api.getHistory("abc");
  assert.deepEqual(f.calls.map((c) => c.url), ["/api/get_context?session_id=abc", "/api/get_history?session_id=abc"]);
});

test("API: a function's error becomes a friendly ApiError", async () => {
  const f = fakeFetch(() => json(409, { error: { code: "failed_precondition", message: "session ended" } }));
  const api = createApi({ base: "/api", getToken: async () => "t", fetchImpl: f });
  await assert.rejects(api.chat({ sessionId: "s", content: "hi", clientMessageId: "t-1" }), (e) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, "failed_precondition");
    assert.match(e.friendly, /session has ended/);
    return true;
  });
});

test("API: rate limit carries Retry-After; non-JSON errors are handled", async () => {
  let api = createApi({ base: "/api", getToken: async () => "t",
    fetchImpl: fakeFetch(() => json(429, { error: { code: "rate_limited", message: "slow" } }, { "Retry-After": "7" })) });
  await assert.rejects(api.health(), (e) => e.retryAfterS === 7 && /Wait 7 s/.test(e.friendly));
  api = createApi({ base: "/api", getToken: async () => "t",
    fetchImpl: fakeFetch(() => new Response("<html>Function us-central1-x does not exist</html>", { status: 404 })) });
  await assert.rejects(api.health(), (e) => e.code === "http_404" && e.status === 404);
});

test("API: network failure and 401 refresh", async () => {
  let api = createApi({ base: "/api", getToken: async () => "t", retryDelayMs: 0, fetchImpl: async () => { throw new TypeError("Failed to fetch"); } });
  await assert.rejects(api.health(), (e) => e.kind === "network" && /Nothing was lost/.test(e.friendly));
  const forced = [];
  const f = fakeFetch((url, init, n) => (n === 1 ? json(401, { error: { code: "unauthenticated", message: "expired" } }) : json(200, { ok: 1 })));
  api = createApi({ base: "/api", getToken: async (force) => { forced.push(force); return force ? "new" : "old"; }, fetchImpl: f });
  assert.deepEqual(await api.health(), { ok: 1 });
  assert.deepEqual(forced, [false, true]);
  assert.equal(f.calls[1].init.headers.Authorization, "Bearer new");
});

test("API: a read is retried once after a dropped connection, a write is not", async () => {
  const flaky = () => fakeFetch((url, init, n) => {
    if (n === 1) throw new TypeError("Failed to fetch");
    return json(200, { ok: n });
  });
  let f = flaky();
  let api = createApi({ base: "/api", getToken: async () => "t", fetchImpl: f, retryDelayMs: 0 });
  assert.deepEqual(await api.getContext("s", 8), { ok: 2 });
  assert.equal(f.calls.length, 2);
  f = flaky();
  api = createApi({ base: "/api", getToken: async () => "t", fetchImpl: f, retryDelayMs: 0 });
  await assert.rejects(api.chat({ sessionId: "s", content: "hi", clientMessageId: "t-1" }), (e) => e.kind === "network");
  assert.equal(f.calls.length, 1);
});

test("API: a chat 503 says the turn can be finished by trying again", async () => {
  const api = createApi({ base: "/api", getToken: async () => "t",
    fetchImpl: fakeFetch(() => json(503, { error: { code: "unavailable", message: "the assistant could not answer" } })) });
  await assert.rejects(api.chat({ sessionId: "s", content: "hi", clientMessageId: "t-1" }),
    (e) => e.status === 503 && /try again to finish this turn/.test(e.friendly));
});

test("turn ids: fit the service's client_message_id rule", () => {
  for (const id of [newTurnId(), newTurnId("a b/c?d#e"), newTurnId("x".repeat(300))]) {
    assert.match(id, CLIENT_MESSAGE_ID);
  }
  assert.notEqual(newTurnId(), newTurnId());
});

test("a retry of the same message reuses the pending turn's id; another message or session gets a new one", async () => {
  let n = 0;
  const makeId = () => `t-${++n}`;
  const first = turnFor(null, "s1", "hello", makeId);
  assert.deepEqual(first, { sessionId: "s1", content: "hello", clientMessageId: "t-1" });
  assert.equal(turnFor(first, "s1", "hello", makeId), first);
  assert.equal(turnFor(first, "s1", "hello again", makeId).clientMessageId, "t-2");
  assert.equal(turnFor(first, "s2", "hello", makeId).clientMessageId, "t-3");

  // The retry sends the very same body: the service answers it once.
  const f = fakeFetch((url, init, k) => {
    if (k === 1) throw new TypeError("Failed to fetch");
    return json(201, { session_id: "s1", answer: { content: "a", seq: 2, metadata: {} }, user_seq: 1, message_count: 2 });
  });
  const api = createApi({ base: "/api", getToken: async () => "t", fetchImpl: f });
  let pending = turnFor(null, "s1", "hello", makeId);
  await assert.rejects(api.chat(pending), (e) => e.kind === "network");
  pending = turnFor(pending, "s1", "hello", makeId);
  await api.chat(pending);
  assert.equal(f.calls[0].init.body, f.calls[1].init.body);
});

test("a pending turn survives a reload through sessionStorage, and only a well-formed one", () => {
  const turn = { sessionId: "s1", content: "hello", clientMessageId: "t-1" };
  assert.deepEqual(parsePending(JSON.stringify(turn)), turn);
  for (const raw of [null, "", "not json", "42", JSON.stringify({ ...turn, clientMessageId: "bad id#" }), JSON.stringify({ ...turn, content: 5 })]) {
    assert.equal(parsePending(raw), null);
  }
});

test("answers: confidence and sources shown as given; none shown as none", () => {
  const known = describeAnswer({ confidence: 0.861, sources: ["account-reset-password"], collection: "account_security" });
  assert.equal(known.confidenceText, "confidence 86%");
  assert.equal(known.sourcesText, "sources: account-reset-password");
  assert.equal(known.collection, "account_security");
  const unknown = describeAnswer({ confidence: 0.21, sources: [], collection: null });
  assert.equal(unknown.confidenceText, "confidence 21%");
  assert.equal(unknown.sourcesText, "no sources");
  assert.equal(unknown.collection, null);
  assert.equal(describeAnswer(undefined).confidenceText, "confidence unknown");
  assert.equal(describeAnswer({ confidence: "high" }).confidence, null);
});

test("the context's count says what get_context answered, not a window the page assumes", () => {
  assert.equal(contextNote(0, 0), "(none yet)");
  assert.equal(contextNote(1, 1), "(1 message: the whole session)");
  assert.equal(contextNote(4, 4), "(4 messages: the whole session)");
  // Past the service's window (or its byte bound) the context holds the newest messages only.
  assert.equal(contextNote(8, 12), "(the last 8 messages of 12)");
  // A count the page does not know (or one behind the service) claims nothing about the rest.
  assert.equal(contextNote(6, 0), "(6 messages)");
  assert.equal(contextNote(6, undefined), "(6 messages)");
});

test("the transcript holds each stored message once", () => {
  const restored = [{ seq: 1, role: "user", content: "q1" }, { seq: 2, role: "assistant", content: "a1" }, { seq: 3, role: "user", content: "q2" }];
  const after = withMessages(restored, [{ seq: 3, role: "user", content: "q2" }, { seq: 4, role: "assistant", content: "a2" }]);
  assert.deepEqual(after.map((m) => m.seq), [1, 2, 3, 4]);
  assert.equal(restored.length, 3);
});

test("the file config: config.json, else Hosting's reserved web config, else nothing", async () => {
  const { loadFileConfig } = await import("../src/config.js");
  const init = { apiKey: "k", projectId: "p", authDomain: "p.firebaseapp.com", storageBucket: "b" };
  const hosting = async (path) =>
    path === "/__/firebase/init.json" ? new Response(JSON.stringify(init)) : new Response("", { status: 404 });
  assert.deepEqual(await loadFileConfig(hosting), { firebase: { apiKey: "k", authDomain: "p.firebaseapp.com", projectId: "p" } });
  const file = async (path) => (path === "config.json" ? new Response(JSON.stringify({ apiBase: "/fn", firebase: { projectId: "q" } })) : hosting(path));
  assert.deepEqual(await loadFileConfig(file), { apiBase: "/fn", firebase: { projectId: "q" } });
  assert.deepEqual(await loadFileConfig(async () => { throw new Error("offline"); }), {});
});

test("a message is measured as the service measures it: UTF-8 bytes against 32 KiB", () => {
  assert.equal(MAX_CONTENT_BYTES, 32 * 1024);
  assert.deepEqual(contentSize(""), { bytes: 0, limit: 32768, over: 0, ok: true, text: "0 / 32,768 bytes", problem: null });
  assert.equal(contentSize("é".repeat(16384)).ok, true); // 32,768 bytes: just fits
  const over = contentSize("é".repeat(16385)); // fewer characters than the limit, more bytes
  assert.equal(over.bytes, 32770);
  assert.equal(over.ok, false);
  assert.equal(over.text, "32,770 / 32,768 bytes: 2 too many");
  assert.match(over.problem, /at most 32,768 bytes/);
  assert.equal(contentSize("a".repeat(40000)).text, "40,000 / 32,768 bytes: 7,232 too many");
  assert.equal(contentSize("😀").bytes, 4);
  assert.equal(contentSize("abc", 2).over, 1);
});
