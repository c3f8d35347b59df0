// Unit checks of what the console and the admin page share (page.js) that needs no DOM: the
// error banner's words and code, and the footer line that says where requests go.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError } from "../src/api.js";
import { resolveConfig } from "../src/config.js";
import { configNote, describeError, PageError, retryable } from "../src/page.js";

test("the banner: the service's friendly sentence, the page's own words, or a bug said as one", () => {
  const api = new ApiError({ kind: "http", status: 413, code: "payload_too_large", message: "too big", fn: "chat" });
  assert.deepEqual(describeError(api), { text: api.friendly, code: "payload_too_large" });
  const signIn = new PageError("sign_in_failed", "Could not sign in anonymously (auth/network-request-failed).");
  assert.deepEqual(describeError(signIn), { text: signIn.message, code: "sign_in_failed" });
  assert.deepEqual(describeError(new TypeError("x is undefined")), { text: "Something went wrong: x is undefined", code: "client_error" });
  assert.deepEqual(describeError("boom"), { text: "Something went wrong: boom", code: "client_error" });
});

test("the footer says where the functions and Auth are, and which query parameters were ignored", () => {
  const local = resolveConfig({ hostname: "127.0.0.1", search: "" }, null);
  assert.equal(configNote(local), "Functions: /api/<name> · Auth: emulator at http://127.0.0.1:9099");
  const prod = resolveConfig({ hostname: "chat.example.com", search: "?api=http://evil.example" }, null);
  assert.equal(configNote(prod), "Functions: /api/<name> · Auth: Firebase Auth · ignored query parameters: api");
});

test("no Try again for a request the service refused (4xx): the same request can only fail again", () => {
  const http = (status, code) => new ApiError({ kind: "http", status, code, message: "m", fn: "chat" });
  for (const [status, code] of [[400, "invalid_argument"], [401, "unauthenticated"], [403, "permission_denied"],
    [404, "not_found"], [409, "failed_precondition"], [409, "too_many_sessions"], [413, "payload_too_large"]]) {
    assert.equal(retryable(http(status, code)), false, `${status} ${code}`);
  }
  for (const [status, code] of [[408, "http_408"], [429, "rate_limited"], [500, "internal"], [503, "unavailable"]]) {
    assert.equal(retryable(http(status, code)), true, `${status} ${code}`);
  }
  // An erasure the service called incomplete (a 200) is finished by the same call.
  assert.equal(retryable(http(200, "unavailable")), true);
  assert.equal(retryable(new ApiError({ kind: "network", code: "network_error", message: "x", fn: "chat" })), true);
  assert.equal(retryable(new ApiError({ kind: "timeout", code: "timeout", message: "x", fn: "chat" })), true);
  assert.equal(retryable(new PageError("sign_in_failed", "x")), true);
});
