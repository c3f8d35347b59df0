// "Delete my data": the confirmation that gates the erasure, the receipt as the page says it,
// and the call that asks for it: `npm run check`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, createApi } from "../src/api.js";
import { describeReceipt, erasureConfirmed } from "../src/erase.js";

const receipt = {
  receipt_id: "3f2a9c",
  complete: true,
  erased: { sessions: 1, messages: 2, analytics_entries: 1, redis_keys: 7, documents: 3 },
};

test("erase: only the typed word, exactly DELETE, lets the erasure go", () => {
  for (const typed of ["DELETE", "  DELETE ", "DELETE\n"]) assert.equal(erasureConfirmed(typed), true, typed);
  for (const typed of ["", "delete", "Delete", "DELETe", "DELET", "DELETE ALL", "yes", "DEL ETE", null, undefined, 1]) {
    assert.equal(erasureConfirmed(typed), false, String(typed));
  }
});

test("erase: the receipt's counts, labelled, and one sentence naming the receipt", () => {
  const d = describeReceipt(receipt);
  assert.equal(d.complete, true);
  assert.equal(d.receiptId, "3f2a9c");
  assert.deepEqual(d.rows.map((r) => [r.key, r.value]), [
    ["sessions", 1], ["messages", 2], ["analytics_entries", 1], ["redis_keys", 7], ["documents", 3],
  ]);
  assert.deepEqual(d.rows.map((r) => r.label), ["Sessions", "Messages", "Analytics entries", "Redis keys", "Firestore documents"]);
  assert.equal(d.sentence, "Erased: 1 session, 2 messages and 1 analytics entry. Receipt 3f2a9c.");
});

test("erase: nothing to erase reads as zeros; a malformed count is not shown as a number it is not", () => {
  const d = describeReceipt({ receipt_id: "r", complete: true, erased: { sessions: 0, messages: "<b>5</b>", analytics_entries: -1 } });
  assert.deepEqual(d.rows.map((r) => r.value), [0, 0, 0, 0, 0]);
  assert.equal(d.sentence, "Erased: 0 sessions, 0 messages and 0 analytics entries. Receipt r.");
});

test("erase: a receipt that is not complete asks for the call again", () => {
  const d = describeReceipt({ ...receipt, complete: false });
  assert.equal(d.complete, false);
  assert.match(d.sentence, /not finished.*try again/i);
  assert.equal(describeReceipt(null).complete, false);
});

test("API: delete_my_data is a POST of exactly {confirm: true} with the token in a header", async () => {
  const calls = [];
  const fetchImpl = async (url, init) => {
    calls.push({ url, init });
    return new Response(JSON.stringify(receipt), { status: 200, headers: { "content-type": "application/json" } });
  };
  const api = createApi({ base: "/api", getToken: async () => "tok", fetchImpl });
  assert.deepEqual(await api.deleteMyData(), receipt);
  assert.equal(calls.length, 1);
  const [{ url, init }] = calls;
  assert.equal(url, "/api/delete_my_data");
  assert.equal(init.method, "POST");
  assert.equal(init.body, '{"confirm":true}');
  assert.equal(init.headers.Authorization, "Bearer tok");
  assert.equal(init.headers["Content-Type"], "application/json");
});

test("API: an erasure that did not finish (503, or an answer lost) says so and is not retried by itself", async () => {
  let calls = 0;
  const unavailable = async () => {
    calls += 1;
    return new Response(JSON.stringify({ error: { code: "unavailable", message: "erasure could not finish; call again to complete it" } }), { status: 503 });
  };
  const api = createApi({ base: "/api", getToken: async () => "t", fetchImpl: unavailable });
  await assert.rejects(api.deleteMyData(), (e) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.status, 503);
    assert.equal(e.fn, "delete_my_data");
    assert.match(e.friendly, /did not finish/);
    assert.match(e.friendly, /Try again/);
    assert.doesNotMatch(e.friendly, /Nothing was lost/);
    return true;
  });
  assert.equal(calls, 1);

  const lost = createApi({ base: "/api", getToken: async () => "t", fetchImpl: async () => { throw new TypeError("Failed to fetch"); } });
  await assert.rejects(lost.deleteMyData(), (e) => {
    assert.equal(e.kind, "network");
    assert.match(e.friendly, /did not finish/);
    return true;
  });

  // A refusal is not an unfinished erasure: the service's own words.
  const refused = createApi({
    base: "/api",
    getToken: async () => "t",
    fetchImpl: async () => new Response(JSON.stringify({ error: { code: "invalid_argument", message: "confirm must be true" } }), { status: 400 }),
  });
  await assert.rejects(refused.deleteMyData(), (e) => {
    assert.match(e.friendly, /refused the request: confirm must be true/);
    return true;
  });
});
