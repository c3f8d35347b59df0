// Unit checks of the page's pure parts (config, API client, canned replies): `npm run check`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, createApi } from "../src/api.js";
import { cannedReply } from "../src/canned.js";
import { resolveConfig } from "../src/config.js";

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

test("API: request shape, bearer token, JSON body", async () => {
  const f = fakeFetch(() => json(201, { session_id: "a".repeat(32), message_count: 1 }));
  const api = createApi({ base: "/api", getToken: async () => "tok", fetchImpl: f });
  await api.appendMessage({ session_id: "s", role: "user", content: "hi" });
  const { url, init } = f.calls[0];
  assert.equal(url, "/api/append_message");
  assert.equal(init.method, "POST");
  assert.equal(init.headers.Authorization, "Bearer tok");
  assert.equal(JSON.parse(init.body).content, "hi");
  await api.getContext("abc", 8);
  assert.equal(f.calls[1].url, "/api/get_context?session_id=abc&max_messages=8");
});

test("API: a function's error becomes a friendly ApiError", async () => {
  const f = fakeFetch(() => json(409, { error: { code: "failed_precondition", message: "session ended" } }));
  const api = createApi({ base: "/api", getToken: async () => "t", fetchImpl: f });
  await assert.rejects(api.appendMessage({}), (e) => {
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

test("canned reply: deterministic, labelled, with kb_ sources", () => {
  const a = cannedReply("How do I reset my password?", 1);
  assert.deepEqual(a, cannedReply("How do I reset my password?", 1));
  assert.match(a.content, /^\[canned #1\]/);
  assert.equal(a.metadata.canned, true);
  assert.match(a.metadata.sources[0], /^kb_[a-z_]+$/);
  assert.ok(a.metadata.confidence >= 0.55 && a.metadata.confidence <= 0.95);
  assert.equal(typeof a.metadata.collection, "string");
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
  await assert.rejects(api.appendMessage({}), (e) => e.kind === "network");
  assert.equal(f.calls.length, 1);
});
