// The admin page's pure parts: date ranges, the report's rows, formatting, the cursor stack of
// the low-confidence table and the CSV download's name. No DOM, no network: `npm run check`.

export const MAX_DAYS = 366; // the admin functions refuse a longer range
export const DEFAULT_DAYS = 30;
export const DEFAULT_PAGE_SIZE = 25;
export const MAX_PAGE_SIZE = 200;
const DAY_MS = 86_400_000;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** A Date's UTC day, YYYY-MM-DD (the reports count by UTC day). */
export function isoDay(date) {
  return new Date(date).toISOString().slice(0, 10);
}

function parseDay(s) {
  if (typeof s !== "string" || !DATE.test(s)) return null;
  const t = Date.parse(`${s}T00:00:00Z`);
  // Date.parse rolls 2026-02-31 over to March: a real day formats back to itself.
  return Number.isNaN(t) || isoDay(t) !== s ? null : t;
}

/** The last `days` UTC days up to `now`, both ends included. */
export function defaultRange(now = new Date(), days = DEFAULT_DAYS) {
  const to = isoDay(now);
  return { from: isoDay(parseDay(to) - (days - 1) * DAY_MS), to };
}

/** Why the range is not one the functions accept, or null when it is. */
export function rangeProblem(from, to) {
  const a = parseDay(from);
  const b = parseDay(to);
  if (a === null) return "The start date is not a date (YYYY-MM-DD).";
  if (b === null) return "The end date is not a date (YYYY-MM-DD).";
  if (a > b) return "The start date is after the end date.";
  if ((b - a) / DAY_MS + 1 > MAX_DAYS) return `A range is at most ${MAX_DAYS} days.`;
  return null;
}

/** Every day from..to, in order: the report's row for a day, or a day of zeros (no rollup). */
export function fillDays(from, to, rows) {
  const byDate = new Map((rows || []).map((r) => [r.date, r]));
  const out = [];
  for (let t = parseDay(from), end = parseDay(to); t !== null && t <= end; t += DAY_MS) {
    const date = isoDay(t);
    out.push(byDate.get(date) || { date, sessions: 0, messages: 0, queries: 0, low_confidence: 0, avg_confidence: null });
  }
  return out;
}

/** The range's totals; the average confidence is weighted by each day's queries. */
export function totals(days) {
  const t = { sessions: 0, messages: 0, queries: 0, low_confidence: 0, avg_confidence: null };
  let weighted = 0;
  let weight = 0;
  for (const d of days) {
    t.sessions += d.sessions;
    t.messages += d.messages;
    t.queries += d.queries;
    t.low_confidence += d.low_confidence;
    if (d.avg_confidence !== null && d.queries > 0) {
      weighted += d.avg_confidence * d.queries;
      weight += d.queries;
    }
  }
  if (weight > 0) t.avg_confidence = weighted / weight;
  return t;
}

/** 0.423 -> "42%"; null -> "—". */
export function pct(x) {
  return typeof x === "number" && Number.isFinite(x) ? `${Math.round(x * 100)}%` : "—";
}

/** The histogram's ten deciles: "0–10%" … "90–100%". */
export function histogramLabels() {
  return Array.from({ length: 10 }, (_, i) => `${i * 10}–${(i + 1) * 10}%`);
}

/** Seconds since the epoch -> "2026-03-04 12:05 UTC". */
export function fmtTimestamp(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds <= 0) return "—";
  return `${new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** {reason: n} -> [[reason, n], …], most first, then by name. */
export function byCount(obj) {
  return Object.entries(obj || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** A session document's fields as [name, text] rows, by name; objects shown as JSON. */
export function fieldRows(doc) {
  return Object.keys(doc || {})
    .sort()
    .map((k) => [k, displayValue(k, doc[k])]);
}

export function displayValue(key, v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number" && /(_at|timestamp)$/.test(key)) return `${fmtTimestamp(v)} (${v})`;
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** The page size from `?limit=` (1..200), else the default. */
export function pageSizeFrom(search) {
  const n = Number.parseInt(new URLSearchParams(search || "").get("limit") || "", 10);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, MAX_PAGE_SIZE) : DEFAULT_PAGE_SIZE;
}

/** The CSV download's file name: the range and the page. */
export function csvFilename(from, to, page) {
  return `low-confidence_${from}_${to}_page-${page}.csv`;
}

/**
 * The cursors of the pages seen so far. The service pages forward only (each page names
 * the next one's cursor), so "previous" re-reads the page whose cursor is one down the stack.
 * A move is committed only once its page has arrived, so a failed request changes nothing.
 */
export class CursorStack {
  constructor() {
    this.reset();
  }

  reset() {
    this.cursors = [null]; // cursors[i] reads page i + 1; the first page needs none
    this.next = null; // the shown page's next_cursor: null on the last page
  }

  get page() {
    return this.cursors.length;
  }

  get current() {
    return this.cursors[this.cursors.length - 1];
  }

  get hasPrevious() {
    return this.cursors.length > 1;
  }

  get hasNext() {
    return this.next !== null;
  }

  get previousCursor() {
    return this.hasPrevious ? this.cursors[this.cursors.length - 2] : null;
  }

  /** The shown page arrived with this next_cursor (first load, reload, or after a move). */
  loaded(nextCursor) {
    this.next = nextCursor || null;
  }

  /** The page read with `this.next` arrived, with its own next_cursor. */
  advanced(nextCursor) {
    if (!this.hasNext) throw new Error("no next page");
    this.cursors.push(this.next);
    this.loaded(nextCursor);
  }

  /** The page read with `previousCursor` arrived, with its own next_cursor. */
  wentBack(nextCursor) {
    if (!this.hasPrevious) throw new Error("no previous page");
    this.cursors.pop();
    this.loaded(nextCursor);
  }
}
