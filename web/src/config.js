// Where the page finds Firebase Auth and the chat-memory functions.
//
// Three sources, later ones win:
//   1. DEFAULTS below (same-origin `/api/<name>` through Hosting rewrites; the Auth
//      emulator on its default port when the page is served from a loopback host);
//   2. `config.json` next to index.html, written by `npm run build` from environment
//      variables (see build.mjs) and replaceable at deploy time;
//   3. query parameters `api` and `auth_emulator`, honoured ONLY when the page itself is
//      served from a loopback host (local development and browser tests). On a real host
//      they are ignored, so a crafted link cannot send a user's ID token elsewhere.

export const DEFAULTS = Object.freeze({
  // Base URL of the functions; `${apiBase}/create_session` etc.
  apiBase: "/api",
  // "auto": the Auth emulator at http://127.0.0.1:9099 when served from loopback, else none.
  // "off": never. A URL: that emulator.
  authEmulator: "auto",
  firebase: {
    apiKey: "demo-key",
    authDomain: "demo-chat-memory.firebaseapp.com",
    projectId: "demo-chat-memory",
  },
  // Give up on a request after this long (the network error path then applies).
  requestTimeoutMs: 15000,
});

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

export function isLoopbackHost(hostname) {
  return LOOPBACK.has(String(hostname || "").toLowerCase()) || /\.localhost$/i.test(hostname || "");
}

function isHttpUrl(value) {
  try {
    const u = new URL(value);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}

function trimSlash(s) {
  return String(s).replace(/\/+$/, "");
}

/**
 * Merge defaults, the runtime config file and (on loopback only) query overrides.
 * @param {{hostname: string, search: string}} location  the page's location
 * @param {object|null} fileConfig  parsed config.json, or null when absent
 */
export function resolveConfig(location, fileConfig) {
  const cfg = {
    ...DEFAULTS,
    firebase: { ...DEFAULTS.firebase },
  };
  const file = fileConfig && typeof fileConfig === "object" ? fileConfig : {};
  if (typeof file.apiBase === "string" && file.apiBase) cfg.apiBase = file.apiBase;
  if (typeof file.authEmulator === "string" && file.authEmulator) cfg.authEmulator = file.authEmulator;
  if (file.firebase && typeof file.firebase === "object") Object.assign(cfg.firebase, file.firebase);
  if (Number.isFinite(file.requestTimeoutMs) && file.requestTimeoutMs > 0) cfg.requestTimeoutMs = file.requestTimeoutMs;

  const loopback = isLoopbackHost(location.hostname);
  const ignored = [];
  const params = new URLSearchParams(location.search || "");
  for (const [key, field] of [["api", "apiBase"], ["auth_emulator", "authEmulator"]]) {
    if (!params.has(key)) continue;
    const value = params.get(key);
    const ok = field === "authEmulator" ? value === "off" || isHttpUrl(value) : isHttpUrl(value) || value.startsWith("/");
    if (loopback && ok) cfg[field] = value;
    else ignored.push(key);
  }

  cfg.apiBase = trimSlash(cfg.apiBase);
  if (cfg.authEmulator === "auto") {
    cfg.authEmulatorUrl = loopback ? "http://127.0.0.1:9099" : null;
  } else if (cfg.authEmulator === "off") {
    cfg.authEmulatorUrl = null;
  } else {
    cfg.authEmulatorUrl = isHttpUrl(cfg.authEmulator) ? trimSlash(cfg.authEmulator) : null;
  }
  cfg.ignoredParams = ignored;
  return cfg;
}

async function fetchJson(fetchImpl, path) {
  try {
    const res = await fetchImpl(path, { cache: "no-store" });
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

/** The runtime config file (`config.json` next to the page), completed by Hosting's web config. */
export async function loadFileConfig(fetchImpl = globalThis.fetch.bind(globalThis)) {
  const file = (await fetchJson(fetchImpl, "config.json")) || {};
  if (!file.firebase) {
    // On Firebase Hosting (and its emulator) the project's web config is at a reserved URL.
    const init = await fetchJson(fetchImpl, "/__/firebase/init.json");
    if (init && init.apiKey && init.projectId) {
      const { apiKey, authDomain, projectId, appId } = init;
      file.firebase = { apiKey, authDomain, projectId, ...(appId ? { appId } : {}) };
    }
  }
  return file;
}
