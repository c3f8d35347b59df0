// Unit checks of the admin page's pure parts (admin-model.js) and its calls (api.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  byCount,
  CursorStack,
  csvFilename,
  DEFAULT_PAGE_SIZE,
  defaultRange,
  displayValue,
  fieldRows,
  fillDays,
  fmtTimestamp,
  histogramLabels,
  pageSizeFrom,
  pct,
  rangeProblem,
  totals,
} from "../src/admin-model.js";
import { createApi } from "../src/api.js";

test("the default range is the last 30 UTC days, today included", () => {
  assert.deepEqual(defaultRange(new Date("2026-03-05T23:30:00Z")), { from: "2026-02-04", to: "2026-03-05" });
  assert.deepEqual(defaultRange(new Date("2026-03-05T00:00:00Z"), 1), { from: "2026-03-05", to: "2026-03-05" });
});

test("a range the functions would refuse is caught before asking", () => {
  assert.equal(rangeProblem("2026-01-01", "2026-01-31"), null);
  assert.equal(rangeProblem("2025-01-01", "2026-01-01"), null); // 366 days
  assert.match(rangeProblem("2025-01-01", "2026-01-02"), /at most 366/);
  assert.match(rangeProblem("2026-02-02", "2026-02-01"), /after/);
  assert.match(rangeProblem("2026-02-31", "2026-03-01"), /start date/);
  assert.match(rangeProblem("2026-01-01", ""), /end date/);
});

test("fillDays gives every day of the range in order, zeros where there is no rollup", () => {
  const row = { date: "2026-01-02", sessions: 2, messages: 8, queries: 4, low_confidence: 1, avg_confidence: 0.6 };
  const days = fillDays("2026-01-01", "2026-01-03", [row]);
  assert.deepEqual(days.map((d) => d.date), ["2026-01-01", "2026-01-02", "2026-01-03"]);
  assert.equal(days[1], row);
  assert.deepEqual(days[0], { date: "2026-01-01", sessions: 0, messages: 0, queries: 0, low_confidence: 0, avg_confidence: null });
  assert.equal(fillDays("2025-12-31", "2026-01-01", []).length, 2); // across a year
});

test("totals weigh each day's average confidence by its questions", () => {
  const t = totals([
    { sessions: 1, messages: 4, queries: 2, low_confidence: 0, avg_confidence: 0.9 },
    { sessions: 0, messages: 0, queries: 0, low_confidence: 0, avg_confidence: null },
    { sessions: 2, messages: 12, queries: 6, low_confidence: 3, avg_confidence: 0.5 },
  ]);
  assert.deepEqual({ ...t, avg_confidence: Math.round(t.avg_confidence * 100) / 100 }, {
    sessions: 3, messages: 16, queries: 8, low_confidence: 3, avg_confidence: 0.6,
  });
  assert.equal(totals([]).avg_confidence, null);
});

test("formatting: percentages, deciles, UTC times, counts by size", () => {
  assert.equal(pct(0.426), "43%");
  assert.equal(pct(null), "—");
  assert.deepEqual([histogramLabels()[0], histogramLabels()[9], histogramLabels().length], ["0–10%", "90–100%", 10]);
  assert.equal(fmtTimestamp(1767225600.5), "2026-01-01 00:00 UTC");
  assert.equal(fmtTimestamp(null), "—");
  assert.deepEqual(byCount({ idle: 1, user: 3, agent: 1 }), [["user", 3], ["agent", 1], ["idle", 1]]);
});

test("a session document's fields: by name, times readable, objects as JSON", () => {
  const rows = fieldRows({ status: "ended", created_at: 1767225600, user_info: { platform: "web" }, summary: null });
  assert.deepEqual(rows, [
    ["created_at", "2026-01-01 00:00 UTC (1767225600)"],
    ["status", "ended"],
    ["summary", "—"],
    ["user_info", '{"platform":"web"}'],
  ]);
  assert.equal(displayValue("message_count", 4), "4");
});

test("page size from ?limit=, within 1..200", () => {
  assert.equal(pageSizeFrom(""), DEFAULT_PAGE_SIZE);
  assert.equal(pageSizeFrom("?limit=3"), 3);
  assert.equal(pageSizeFrom("?limit=999"), 200);
  assert.equal(pageSizeFrom("?limit=0"), DEFAULT_PAGE_SIZE);
  assert.equal(pageSizeFrom("?limit=abc"), DEFAULT_PAGE_SIZE);
});

test("the cursor stack pages forward and back, and a move counts only once its page arrived", () => {
  const p = new CursorStack();
  assert.deepEqual([p.page, p.current, p.hasPrevious, p.hasNext], [1, null, false, false]);
  p.loaded("c2");
  assert.equal(p.next, "c2");
  // A failed request for page 2 commits nothing: still page 1, same next cursor.
  assert.deepEqual([p.page, p.next], [1, "c2"]);
  p.advanced("c3");
  assert.deepEqual([p.page, p.current, p.previousCursor, p.next], [2, "c2", null, "c3"]);
  p.advanced(null); // the last page
  assert.deepEqual([p.page, p.current, p.previousCursor, p.hasNext], [3, "c3", "c2", false]);
  assert.throws(() => p.advanced(null));
  p.wentBack("c3");
  assert.deepEqual([p.page, p.current, p.next], [2, "c2", "c3"]);
  p.wentBack("c2");
  assert.deepEqual([p.page, p.current, p.hasPrevious], [1, null, false]);
  assert.throws(() => p.wentBack(null));
  p.advanced("c3");
  p.reset();
  assert.deepEqual([p.page, p.current, p.hasNext], [1, null, false]);
});

test("the CSV file names its range and page", () => {
  assert.equal(csvFilename("2026-01-01", "2026-01-30", 2), "low-confidence_2026-01-01_2026-01-30_page-2.csv");
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

test("API: the admin calls are GETs with the range, page and cursor in the query", async () => {
  const page = { items: [], next_cursor: null };
  const f = fakeFetch(() => new Response(JSON.stringify(page), { status: 200 }));
  const api = createApi({ base: "/api", getToken: async () => "tok", fetchImpl: f });
  assert.deepEqual(await api.adminLowConfidence({ from: "2026-01-01", to: "2026-01-02", limit: 5, cursor: null }), page);
  await api.adminLowConfidence({ from: "2026-01-01", to: "2026-01-02", limit: 5, cursor: "abc_-" });
  await api.adminReport({ from: "2026-01-01", to: "2026-01-02" });
  await api.adminSession("0123456789abcdef0123456789abcdef");
  assert.deepEqual(f.calls.map((c) => c.url), [
    "/api/admin_low_confidence?from=2026-01-01&to=2026-01-02&limit=5",
    "/api/admin_low_confidence?from=2026-01-01&to=2026-01-02&limit=5&cursor=abc_-",
    "/api/admin_report?from=2026-01-01&to=2026-01-02",
    "/api/admin_session?session_id=0123456789abcdef0123456789abcdef",
  ]);
  assert.ok(f.calls.every((c) => c.init.method === "GET" && c.init.headers.Authorization === "Bearer tok"));
});

test("API: the CSV comes back as text; a refusal as an error that says admins only", async () => {
  const csv = "session_id,seq\r\nabc,2\r\n";
  const f = fakeFetch((url) =>
    url.includes("format=csv")
      ? new Response(csv, { status: 200, headers: { "content-type": "text/csv" } })
      : new Response(JSON.stringify({ error: { code: "permission_denied", message: "this needs an admin" } }), { status: 403 }),
  );
  const api = createApi({ base: "/api", getToken: async () => "tok", fetchImpl: f });
  assert.equal(await api.adminLowConfidenceCsv({ from: "2026-01-01", to: "2026-01-02", limit: 5, cursor: null }), csv);
  assert.match(f.calls[0].url, /format=csv/);
  await assert.rejects(api.adminReport({ from: "2026-01-01", to: "2026-01-02" }), (e) => {
    assert.equal(e.status, 403);
    assert.match(e.friendly, /for admins/);
    return true;
  });
});
