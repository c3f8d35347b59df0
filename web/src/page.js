// What the console (main.js) and the admin page (admin.js) do alike, kept in one place so the
// two pages cannot drift apart: find an element by its data-testid, say what the page is doing,
// show an error (with "Try again" when there is something to retry), run an action as busy,
// connect to Firebase Auth and the functions, sign in, and hand the browser a file. Text
// reaches the DOM through textContent only.

import { initializeApp } from "firebase/app";
import { connectAuthEmulator, getAuth, signInAnonymously } from "firebase/auth";

import { ApiError, createApi } from "./api.js";

export const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

export function setStatus(text) {
  $("status").textContent = text || "";
}

// A failure the page names itself (not the service): shown in its own words, under its own
// code, so a test or a user can tell it from an unexpected one.
export class PageError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "PageError";
    this.code = code;
  }
}

/** The banner's sentence and code for `err`. */
export function describeError(err) {
  if (err instanceof ApiError) return { text: err.friendly, code: err.code };
  if (err instanceof PageError) return { text: err.message, code: err.code };
  return { text: `Something went wrong: ${(err && err.message) || err}`, code: "client_error" };
}

/**
 * Whether repeating the request can end otherwise. A refusal of the request itself (an HTTP 4xx:
 * too large, invalid, not found, not yours, ended) answers the same again, so the banner offers
 * no "Try again" for it; a network failure, a timeout, a 5xx, 408 and 429 (rate limited) may
 * pass next time. Not the service's answer (the page's own error): the caller decides.
 */
export function retryable(err) {
  if (!(err instanceof ApiError) || err.kind !== "http") return true;
  return !(err.status >= 400 && err.status < 500) || err.status === 408 || err.status === 429;
}

let retryAction = null;
let bannerHome = null;

/**
 * Show `err` in the error banner, with "Try again" running `retry` when repeating can help.
 * `near`: the element the user is working at (e.g. a form far down the page): the banner is
 * shown right after it, else in its own place at the top. Either way it is scrolled into view.
 */
export function showError(err, retry, { near = null } = {}) {
  const { text, code } = describeError(err);
  const banner = $("error-banner");
  if (!bannerHome) bannerHome = { parent: banner.parentNode, next: banner.nextSibling };
  if (near) near.after(banner);
  else if (banner.parentNode !== bannerHome.parent) bannerHome.parent.insertBefore(banner, bannerHome.next);
  $("error-message").textContent = text;
  banner.dataset.code = code;
  banner.hidden = false;
  retryAction = retry && retryable(err) ? retry : null;
  $("error-retry").hidden = !retryAction;
  setStatus("");
  if (typeof banner.scrollIntoView === "function") banner.scrollIntoView({ block: "nearest" });
  // A bug of the page's own: the console is where a developer looks for it.
  if (!(err instanceof ApiError) && !(err instanceof PageError)) console.error(err);
}

export function clearError() {
  $("error-banner").hidden = true;
  $("error-message").textContent = "";
  retryAction = null;
}

export function wireErrorBanner() {
  $("error-dismiss").addEventListener("click", clearError);
  $("error-retry").addEventListener("click", () => {
    const action = retryAction;
    clearError();
    if (action) action();
  });
}

/**
 * `withBusy(label, fn)` for a page: marks `state.busy` while `fn` runs (the label in the status
 * line), and calls `update` before and after so the page can disable its buttons meanwhile.
 */
export function busyRunner(state, update) {
  return async function withBusy(label, fn) {
    state.busy = true;
    update();
    setStatus(label);
    try {
      return await fn();
    } finally {
      state.busy = false;
      update();
    }
  };
}

/** The page's footer line: where its requests go (resolveConfig's answer). */
export function configNote(config) {
  return (
    `Functions: ${config.apiBase}/<name> · Auth: ${config.authEmulatorUrl ? `emulator at ${config.authEmulatorUrl}` : "Firebase Auth"}` +
    (config.ignoredParams.length ? ` · ignored query parameters: ${config.ignoredParams.join(", ")}` : "")
  );
}

/** Firebase Auth for `config` and an API client that sends the signed-in user's ID token. */
export function connect(config) {
  const auth = getAuth(initializeApp(config.firebase));
  if (config.authEmulatorUrl) connectAuthEmulator(auth, config.authEmulatorUrl, { disableWarnings: true });
  const api = createApi({
    base: config.apiBase,
    timeoutMs: config.requestTimeoutMs,
    getToken: async (force) => (auth.currentUser ? auth.currentUser.getIdToken(force) : null),
  });
  return { auth, api };
}

/** The user already signed in on this browser, or a new anonymous one. */
export async function signInUser(auth) {
  await auth.authStateReady();
  return auth.currentUser || (await signInAnonymously(auth)).user;
}

/** One message as a list item: its role, then its content. */
export function messageItem(m) {
  const li = document.createElement("li");
  li.dataset.role = String(m.role);
  const role = document.createElement("span");
  role.className = "role";
  role.textContent = `${m.role}: `;
  const content = document.createElement("span");
  content.textContent = String(m.content ?? "");
  li.append(role, content);
  return li;
}

// The functions need the ID token in a header, so a plain link cannot fetch a download: the
// page fetches the data and hands the browser a file.
export function saveFile(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
