"""The chat console in a real browser, against the real stack (issue 7).

Given the page served by Hosting (its /api rewrites lead to the functions), the Auth, Firestore
and Functions emulators and Redis, when a user signs in anonymously, converses past a rolling
summary and ends the session, then the page shows the summary appear, the storage layer, the
message count, and the end result; and the on_session_ended trigger writes the user's stats.
Nothing is mocked: every request goes from Chromium to the running services. The one network
failure the test causes is a dropped request in the browser (Playwright's routing), the way a
flaky connection drops one.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect

TURNS = 4  # user + canned assistant reply each: 8 messages, past the summary at 5
SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


def _firestore_doc(stack, path: str) -> dict | None:
    """A document read straight from the Firestore emulator ("Bearer owner" passes the rules)."""
    url = f"http://{stack.firestore_host}/v1/projects/{stack.project_id}/databases/(default)/documents/{path}"
    req = urllib.request.Request(url, headers={"Authorization": "Bearer owner"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 (loopback emulator)
            return json.load(r)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def _value(v: dict):
    """Decode one Firestore REST value."""
    if "integerValue" in v:
        return int(v["integerValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "stringValue" in v:
        return v["stringValue"]
    if "booleanValue" in v:
        return v["booleanValue"]
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values", [])]
    if "mapValue" in v:
        return {k: _value(x) for k, x in v["mapValue"].get("fields", {}).items()}
    if "nullValue" in v:
        return None
    return v


def _fields(doc: dict | None) -> dict:
    return {k: _value(v) for k, v in (doc or {}).get("fields", {}).items()}


def _send(page: Page, text: str, expected_count: int) -> None:
    page.get_by_test_id("composer-input").fill(text)
    page.get_by_test_id("send-button").click()
    expect(page.get_by_test_id("message-count")).to_have_text(str(expected_count))
    # The context is read back after both appends: wait for this turn's reply in it.
    expect(page.get_by_test_id("formatted-context")).to_contain_text(text[:40])
    expect(page.get_by_test_id("status")).to_contain_text("Stored.")
    expect(page.get_by_test_id("composer-input")).to_have_value("")


def test_console_converses_summarises_and_ends(page: Page, stack, artifacts_dir: Path) -> None:
    # -- sign in and get a session ------------------------------------------------------------
    page.goto(stack.page_url)
    expect(page.get_by_test_id("auth-status")).to_contain_text("anonymous")
    uid = page.get_by_test_id("auth-status").get_attribute("data-uid")
    assert uid, "the page did not sign in"
    expect(page.get_by_test_id("session-id")).to_have_text(SESSION_ID)
    session_id = page.get_by_test_id("session-id").inner_text()
    expect(page.get_by_test_id("session-status")).to_have_text("active")
    expect(page.get_by_test_id("canned-note")).to_contain_text("canned")
    expect(page.get_by_test_id("health")).to_contain_text("ok")

    # -- converse: no summary before 5 messages, one after -------------------------------------
    questions = [
        "How do I reset my password on the mobile app?",
        "Which plans include priority support?",
        "Can I export my chat history as a CSV file?",
        "Why does the sync stop when I switch networks?",
    ]
    count = 0
    for i, q in enumerate(questions[:TURNS], start=1):
        count += 2
        _send(page, q, count)
        transcript = page.get_by_test_id("transcript").get_by_test_id("message")
        expect(transcript).to_have_count(count)
        expect(transcript.nth(count - 1)).to_contain_text(f"[canned #{i}]")
        expect(transcript.nth(count - 1)).to_contain_text("canned")
        if count < 5:
            expect(page.get_by_test_id("summary-empty")).to_be_visible()
            expect(page.get_by_test_id("summary")).to_be_hidden()

    summary = page.get_by_test_id("summary")
    expect(summary).to_be_visible()
    assert summary.inner_text().strip(), "the rolling summary is empty"
    expect(page.get_by_test_id("summary-meta")).to_contain_text(re.compile(r"Covers \d+ messages"))
    expect(page.get_by_test_id("formatted-context")).to_contain_text(questions[TURNS - 1])
    # Redis is up in this stack: the hot layer serves reads and takes writes.
    expect(page.get_by_test_id("storage-layer")).to_have_text("redis")
    expect(page.get_by_test_id("context-storage")).to_have_text("redis")
    ctx_items = page.get_by_test_id("context-messages").locator("li")
    assert 1 <= ctx_items.count() <= 8

    # -- a function's error: the service refuses an oversized message; the text stays -----------
    too_big = "é" * 20_000  # 40,000 bytes of UTF-8, over the 32 KiB content limit
    page.get_by_test_id("composer-input").fill(too_big)
    page.get_by_test_id("send-button").click()
    banner = page.get_by_test_id("error-banner")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("data-code", "payload_too_large")
    expect(page.get_by_test_id("error-message")).to_contain_text("refused")
    expect(page.get_by_test_id("composer-input")).to_have_value(too_big)
    expect(page.get_by_test_id("message-count")).to_have_text(str(count))
    page.get_by_test_id("error-dismiss").click()
    expect(banner).to_be_hidden()

    # -- the network drops the next append: friendly message, text kept, retry stores it once ---
    dropped: list[str] = []

    def drop_once(route: Route) -> None:
        if not dropped:
            dropped.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route(re.compile(r".*/append_message(\?.*)?$"), drop_once)
    last = "One more thing: does the summary keep my earlier questions?"
    page.get_by_test_id("composer-input").fill(last)
    page.get_by_test_id("send-button").click()
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("data-code", "network_error")
    expect(page.get_by_test_id("error-message")).to_contain_text("Could not reach")
    expect(page.get_by_test_id("composer-input")).to_have_value(last)
    expect(page.get_by_test_id("message-count")).to_have_text(str(count))
    page.get_by_test_id("error-retry").click()
    count += 2
    expect(page.get_by_test_id("message-count")).to_have_text(str(count))
    expect(page.get_by_test_id("composer-input")).to_have_value("")
    expect(banner).to_be_hidden()
    page.unroute(re.compile(r".*/append_message(\?.*)?$"))
    assert dropped, "the test did not drop a request"
    turns = TURNS + 1

    # -- end the session: the end result and the full history ----------------------------------
    page.get_by_test_id("end-session-button").click()
    end = page.get_by_test_id("end-panel")
    expect(end).to_be_visible()
    expect(page.get_by_test_id("end-status")).to_have_text("ended")
    expect(page.get_by_test_id("session-status")).to_have_text("ended")
    expect(page.get_by_test_id("end-message-count")).to_have_text(str(count))
    expect(page.get_by_test_id("queries-recorded")).to_have_text(str(turns))
    assert page.get_by_test_id("end-summary").inner_text().strip() not in ("", "(no summary)")
    # get_history just before the end: the hot window (the last messages; the rest is summarised).
    held = page.get_by_test_id("history").locator("li")
    expect(held.last).to_contain_text(last[:40])
    assert 1 <= held.count() <= count
    expect(page.get_by_test_id("history-meta")).to_contain_text(f"of {count} messages")
    expect(page.get_by_test_id("history-after")).to_contain_text("messages (served by")
    expect(page.get_by_test_id("send-button")).to_be_disabled()
    expect(page.get_by_test_id("new-session-button")).to_be_visible()
    expect(page.get_by_test_id("status")).to_contain_text("Analytics written")

    page.screenshot(path=str(artifacts_dir / "console.png"), full_page=True)

    # -- what the functions and the trigger wrote (read from the Firestore emulator) ------------
    if not stack.firestore_host:
        pytest.fail("FIRESTORE_EMULATOR_HOST is unknown: cannot check the analytics and user stats")
    analytics = _fields(_firestore_doc(stack, f"analytics/{session_id}"))
    assert analytics, f"no analytics/{session_id} document"
    queries = analytics.get("queries") or []
    assert len(queries) == turns, analytics
    assert all(q.get("sources") and q["sources"][0].startswith("kb_") for q in queries)
    assert queries[0].get("query") == questions[0]

    deadline = time.monotonic() + 30  # the trigger runs asynchronously after the end
    stats: dict = {}
    while time.monotonic() < deadline:
        stats = _fields(_firestore_doc(stack, f"users/{uid}"))
        if stats.get("total_sessions", 0) >= 1 and session_id in (stats.get("recent_sessions") or []):
            break
        time.sleep(0.5)
    assert stats.get("total_sessions") == 1, f"on_session_ended did not update users/{uid}: {stats}"
    assert stats.get("total_messages") == count, stats
    assert stats.get("total_queries") == turns, stats
    assert (stats.get("recent_sessions") or [None])[0] == session_id, stats
