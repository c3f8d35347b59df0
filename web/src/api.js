// A thin client of the chat-memory HTTP functions (their contract: openapi.yaml).
//
// Every failure becomes an ApiError with a `friendly` sentence for the page to show:
// the function's own `{"error": {"code", "message"}}`, a non-JSON answer (e.g. a proxy or
// the emulator saying a function does not exist), a timeout or a network failure.

export class ApiError extends Error {
  /**
   * @param {object} o
   * @param {"http"|"network"|"timeout"} o.kind
   * @param {number} [o.status]
   * @param {string} o.code
   * @param {string} o.message   the server's message (or the network error's)
   * @param {number|null} [o.retryAfterS]
   * @param {string} o.fn        the function called
   */
  constructor({ kind, status = 0, code, message, retryAfterS = null, fn }) {
    super(message);
    this.name = "ApiError";
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
    this.fn = fn;
    this.friendly = friendlyMessage(this);
  }
}

export function friendlyMessage(err) {
  const what = err.fn ? `${err.fn.replace(/_/g, " ")}` : "the request";
  // An erasure that stopped half way is finished by the same call: never say "nothing was lost".
  if (err.fn === "delete_my_data" && (err.kind !== "http" || err.code === "unavailable")) {
    return "Your data was not all erased: the erasure did not finish. Try again to complete it (what is already erased stays erased).";
  }
  if (err.kind === "network") {
    return `Could not reach the chat-memory service (${what}): the network failed or the service is down. Nothing was lost; try again.`;
  }
  if (err.kind === "timeout") {
    return `The chat-memory service did not answer in time (${what}). Nothing was lost; try again.`;
  }
  switch (err.code) {
    case "unauthenticated":
      return "Your sign-in was not accepted (it may have expired). Reload the page to sign in again.";
    case "permission_denied":
      if (String(err.fn || "").startsWith("admin_")) {
        return "This page is for admins: your account does not hold the admin role.";
      }
      return "This session belongs to another user. Start a new session.";
    case "not_found":
      return `Not found (${what}): ${err.message}`;
    case "failed_precondition":
      return `This session has ended; start a new session to keep chatting. (${err.message})`;
    case "rate_limited":
      return `Too many requests. Wait ${err.retryAfterS ?? "a few"} s and try again.`;
    case "unavailable":
      // A chat turn that failed here may have stored the question already: the retry (same
      // client_message_id) finishes that turn rather than asking it twice.
      if (err.fn === "chat") return "The assistant could not answer just now. Nothing was lost; try again to finish this turn.";
      return "The memory service is temporarily unavailable. Nothing was lost; try again in a moment.";
    case "invalid_argument":
    case "payload_too_large":
      return `The service refused the request: ${err.message}`;
    default:
      return `The chat-memory service answered an error (${what}, HTTP ${err.status || "?"}): ${err.message}`;
  }
}

/**
 * @param {object} o
 * @param {string} o.base                       e.g. "/api" or "http://127.0.0.1:5001/demo-chat-memory/us-central1"
 * @param {(forceRefresh: boolean) => Promise<string|null>} o.getToken
 * @param {typeof fetch} [o.fetchImpl]
 * @param {number} [o.timeoutMs]
 * @param {number} [o.retryDelayMs]  pause before the one automatic retry of a read
 */
export function createApi({
  base,
  getToken,
  fetchImpl = globalThis.fetch.bind(globalThis),
  timeoutMs = 15000,
  retryDelayMs = 300,
}) {
  // `as: "text"`: a successful answer is returned as text (a CSV download), not parsed.
  async function once(fn, { method, query, body, as = "json" }, forceRefresh) {
    let url = `${base}/${fn}`;
    if (query) {
      const qs = new URLSearchParams(
        Object.entries(query).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => [k, String(v)]),
      ).toString();
      if (qs) url += `?${qs}`;
    }
    const headers = { Accept: as === "text" ? "text/csv, application/json" : "application/json" };
    const token = await getToken(forceRefresh);
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";

    const controller = typeof AbortController !== "undefined" ? new AbortController() : null;
    const timer = controller ? setTimeout(() => controller.abort(), timeoutMs) : null;
    let res;
    try {
      res = await fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller ? controller.signal : undefined,
        credentials: "omit",
        cache: "no-store",
      });
    } catch (e) {
      const timedOut = controller && controller.signal.aborted;
      throw new ApiError({
        kind: timedOut ? "timeout" : "network",
        code: timedOut ? "timeout" : "network_error",
        message: String((e && e.message) || e),
        fn,
      });
    } finally {
      if (timer) clearTimeout(timer);
    }

    let text = "";
    try {
      text = await res.text();
    } catch (e) {
      throw new ApiError({ kind: "network", code: "network_error", message: String((e && e.message) || e), fn });
    }
    if (res.ok && as === "text") return text;
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (res.ok) {
      if (data === null || typeof data !== "object") {
        throw new ApiError({ kind: "http", status: res.status, code: "bad_response", message: "the answer was not JSON", fn });
      }
      return data;
    }
    const retryAfter = Number.parseInt(res.headers.get("Retry-After") || "", 10);
    const e = data && data.error && typeof data.error === "object" ? data.error : null;
    throw new ApiError({
      kind: "http",
      status: res.status,
      code: e && e.code ? String(e.code) : `http_${res.status}`,
      message: e && e.message ? String(e.message) : (text || res.statusText || "error").slice(0, 200),
      retryAfterS: Number.isFinite(retryAfter) ? retryAfter : null,
      fn,
    });
  }

  async function call(fn, opts) {
    try {
      return await once(fn, opts, false);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      // A token can expire between two requests: refresh it once and retry.
      if (e.status === 401) return once(fn, opts, true);
      // A read is safe to repeat: one quiet retry rides over a dropped connection
      // (e.g. an instance recycled mid-request). Writes are retried by the user, with
      // the same client_message_id, so the service stores them once.
      if (e.kind === "network" && opts.method === "GET") {
        await new Promise((r) => setTimeout(r, retryDelayMs));
        return once(fn, opts, false);
      }
      throw e;
    }
  }

  return {
    // `memory: false`: a memory-off session (it leaves no memory and recalls none).
    createSession: (userInfo, { memory = true } = {}) =>
      call("create_session", { method: "POST", body: { user_info: userInfo, memory: memory !== false } }),
    // One turn: the service stores the user's message, answers it and stores the answer. The
    // page never writes a message itself (an end user's token may not write an assistant's).
    chat: ({ sessionId, content, clientMessageId }) =>
      call("chat", { method: "POST", body: { session_id: sessionId, content, client_message_id: clientMessageId } }),
    getContext: (sessionId, maxMessages) =>
      call("get_context", { method: "GET", query: { session_id: sessionId, max_messages: maxMessages } }),
    getHistory: (sessionId, limit) => call("get_history", { method: "GET", query: { session_id: sessionId, limit } }),
    endSession: (sessionId, agentId) =>
      call("end_session", { method: "POST", body: agentId ? { session_id: sessionId, agent_id: agentId } : { session_id: sessionId } }),
    getUserStats: () => call("get_user_stats", { method: "GET" }),
    // One page of everything held about the caller; the first page has no cursor.
    exportMyData: ({ limit, cursor }) => call("export_my_data", { method: "GET", query: { limit, cursor } }),
    // Erases everything held about the caller; a repeat answers the same receipt.
    deleteMyData: () => call("delete_my_data", { method: "POST", body: { confirm: true } }),
    // The caller's own memories of past sessions: a page (newest first), a search, a deletion.
    listMemories: ({ limit, cursor } = {}) => call("list_memories", { method: "GET", query: { limit, cursor } }),
    searchMemories: ({ q, limit }) => call("search_memories", { method: "GET", query: { q, limit } }),
    deleteMemory: (sessionId) => call("delete_memory", { method: "POST", body: { session_id: sessionId } }),
    health: () => call("health", { method: "GET" }),
    // The admin functions (the token must carry the `admin` claim; else 403 permission_denied).
    adminReport: ({ from, to }) => call("admin_report", { method: "GET", query: { from, to } }),
    adminLowConfidence: ({ from, to, limit, cursor }) =>
      call("admin_low_confidence", { method: "GET", query: { from, to, limit, cursor } }),
    adminLowConfidenceCsv: ({ from, to, limit, cursor }) =>
      call("admin_low_confidence", { method: "GET", query: { from, to, limit, cursor, format: "csv" }, as: "text" }),
    adminSession: (sessionId) => call("admin_session", { method: "GET", query: { session_id: sessionId } }),
  };
}
