// "What I remember": the panel's pure parts (memories.js) and the calls behind it (api.js):
// `npm run check`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createApi } from "../src/api.js";
import {
  awaitMemory,
  endedAt,
  matchNote,
  mergeMemories,
  recalledBySession,
  recalledSentence,
  recallNote,
  rememberedText,
  searchSentence,
  withoutMemory,
} from "../src/memories.js";

const A = "a".repeat(32);
const B = "b".repeat(32);
const C = "c".repeat(32);
const mem = (session_id, ended_at, text = "t") => ({ session_id, text, ended_at, seq_from: 1, seq_to: 2 });

test("memories: pages merge in the service's order (newest first), each session once, the later read kept", () => {
  const first = mergeMemories([], { items: [mem(A, 30), mem(B, 20)], next_cursor: "x" });
  assert.deepEqual(first.map((m) => m.session_id), [A, B]);
  const more = mergeMemories(first, { items: [mem(B, 20, "again"), mem(C, 10)] });
  assert.deepEqual(more.map((m) => m.session_id), [A, B, C]);
  assert.equal(more[1].text, "again");
  assert.deepEqual(mergeMemories(more, null), more);
  assert.deepEqual(mergeMemories([], { items: [null, { text: "no id" }, mem(A, 1)] }).map((m) => m.session_id), [A]);
  assert.deepEqual(withoutMemory(more, B).map((m) => m.session_id), [A, C]);
  assert.deepEqual(withoutMemory(undefined, B), []);
});

test("memories: the recalled ones by session, and why each is in the conversation", () => {
  const recalled = recalledBySession([{ session_id: A, text: "x", score: 1.2345, ended_at: 1 }, { session_id: B, score: "?" }, null]);
  assert.deepEqual([...recalled], [[A, 1.2345], [B, 0]]);
  assert.equal(recallNote(recalled.get(A)), "recalled for this conversation, score 1.23");
  assert.equal(matchNote(0.5), "match score 0.50");
  assert.equal(recalledBySession(undefined).size, 0);
  assert.equal(recalledSentence(new Map()), null);
  assert.match(recalledSentence(recalled), /^2 past sessions were recalled/);
  assert.match(recalledSentence(new Map([[A, 1]])), /^1 past session was recalled/);
});

test("memories: a date from ended_at (seconds), or none for what is not one", () => {
  const d = endedAt(1767225600.5, "en-GB"); // 2026-01-01T00:00:00.5Z
  assert.equal(d.iso, "2026-01-01T00:00:00.500Z");
  assert.ok(d.text.length > 0);
  for (const bad of [0, -1, null, undefined, "soon", Number.NaN, 1e20]) assert.equal(endedAt(bad), null, String(bad));
});

test("memories: the session info says whether the chat is remembered; the search says what matched", () => {
  assert.equal(rememberedText(true), "yes");
  assert.match(rememberedText(false), /^no \(memory off/);
  assert.equal(rememberedText(null), "—");
  assert.equal(searchSentence("cat", 1), "1 memory matches “cat”, best first.");
  assert.equal(searchSentence("cat", 3), "3 memories match “cat”, best first.");
  assert.equal(searchSentence("<b>", 0), "No memory matches “<b>”.");
});

test("memories: after an end, the first page is read again until it holds the session's memory, a bounded number of times", async () => {
  const slept = [];
  const sleep = async (ms) => slept.push(ms);
  let reads = 0;
  const laterHolds = async () => ({ items: ++reads >= 3 ? [mem(A, 2), mem(B, 1)] : [mem(B, 1)] });
  const got = await awaitMemory(laterHolds, A, { sleep, delayMs: 5 });
  assert.deepEqual([got.found, got.stopped, reads], [true, false, 3]);
  assert.deepEqual(slept, [5, 5]);

  reads = 0;
  const never = async () => ({ items: [mem(B, ++reads)] });
  const gaveUp = await awaitMemory(never, A, { sleep, attempts: 4 });
  assert.deepEqual([gaveUp.found, gaveUp.stopped, reads], [false, false, 4]);
  assert.equal(gaveUp.page.items[0].ended_at, 4);

  // A newer read of the panel began: this one stops without reading again.
  reads = 0;
  let wanted = true;
  const stops = await awaitMemory(async () => ((wanted = false), { items: [], reads: ++reads }), A, { sleep, stillWanted: () => wanted });
  assert.deepEqual([stops.found, stops.stopped, reads], [false, true, 1]);
});

test("API: list, search and delete memories, and create_session's memory switch", async () => {
  const calls = [];
  const fetchImpl = async (url, init) => {
    calls.push({ url, method: init.method, body: init.body, auth: init.headers.Authorization });
    return new Response(JSON.stringify({ items: [], session_id: A, deleted: true }), { status: 200 });
  };
  const api = createApi({ base: "/api", getToken: async () => "tok", fetchImpl });
  await api.listMemories({ limit: 10 });
  await api.listMemories({ limit: 10, cursor: "c u/r" });
  await api.searchMemories({ q: "my cat & dog", limit: 5 });
  await api.deleteMemory(A);
  await api.createSession({ platform: "web" });
  await api.createSession({ platform: "web" }, { memory: false });
  assert.deepEqual(calls.map((c) => [c.method, c.url, c.body]), [
    ["GET", "/api/list_memories?limit=10", undefined],
    ["GET", "/api/list_memories?limit=10&cursor=c+u%2Fr", undefined],
    ["GET", "/api/search_memories?q=my+cat+%26+dog&limit=5", undefined],
    ["POST", "/api/delete_memory", JSON.stringify({ session_id: A })],
    ["POST", "/api/create_session", JSON.stringify({ user_info: { platform: "web" }, memory: true })],
    ["POST", "/api/create_session", JSON.stringify({ user_info: { platform: "web" }, memory: false })],
  ]);
  assert.ok(calls.every((c) => c.auth === "Bearer tok"));
});
