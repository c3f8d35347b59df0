// What the console keeps across a reload (kept.js): `npm run check`. sessionStorage is the
// browser's; here a small Map-backed one stands in for it, and a throwing one for a browser
// whose storage is disabled.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { keepDraft, keepSession, keepTurn, keptDraft, keptSession, keptTurn } from "../src/kept.js";

function storage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => m.set(k, String(v)),
    removeItem: (k) => m.delete(k),
    size: () => m.size,
  };
}

afterEach(() => {
  delete globalThis.window;
});

test("the session, the unanswered turn and the draft come back after a reload, and go when dropped", () => {
  const s = storage();
  globalThis.window = { sessionStorage: s };
  const saved = { uid: "u1", sessionId: "a".repeat(32), messageCount: 12 };
  const turn = { sessionId: saved.sessionId, content: "hi", clientMessageId: "t-1" };
  keepSession(saved);
  keepTurn(turn);
  keepDraft("half a ques");
  assert.deepEqual(keptSession(), saved);
  assert.deepEqual(keptTurn(), turn);
  assert.equal(keptDraft(), "half a ques");
  keepSession(null);
  keepTurn(null);
  keepDraft(null);
  assert.equal(s.size(), 0);
  assert.equal(keptSession(), null);
  assert.equal(keptTurn(), null);
  assert.equal(keptDraft(), "");
});

test("a malformed kept turn or session reads as none", () => {
  const s = storage();
  globalThis.window = { sessionStorage: s };
  s.setItem("chat-memory.pending", JSON.stringify({ sessionId: "s", content: "hi", clientMessageId: "bad id!" }));
  s.setItem("chat-memory.session", "{not json");
  assert.equal(keptTurn(), null);
  assert.equal(keptSession(), null);
});

test("storage disabled: nothing is kept and nothing throws", () => {
  const refuse = () => {
    throw new Error("SecurityError");
  };
  globalThis.window = { sessionStorage: { getItem: refuse, setItem: refuse, removeItem: refuse } };
  keepSession({ uid: "u", sessionId: "s", messageCount: 1 });
  keepDraft("x");
  assert.equal(keptSession(), null);
  assert.equal(keptDraft(), "");
  globalThis.window = {
    get sessionStorage() {
      return refuse();
    },
  };
  assert.equal(keptTurn(), null);
});
