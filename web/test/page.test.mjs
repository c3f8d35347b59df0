// Unit checks of what the console and the admin page share (page.js) that needs no DOM: the
// error banner's words and code, and the footer line that says where requests go.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError } from "../src/api.js";
import { resolveConfig } from "../src/config.js";
import { configNote, describeError, PageError } from "../src/page.js";

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
