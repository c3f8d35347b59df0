"""The chat console in a real browser, against the real stack.

Given the page served by Hosting, the Auth, Firestore and Functions emulators, Redis and the
default `kb` responder, when a user signs in anonymously, chats past a rolling summary and ends
the session, then each answer shows its confidence and sources (or none, for a question the
knowledge base does not cover), the page shows the summary appear, the storage layer, the
message count and the end result, and the on_session_ended trigger writes the user's stats.
"Download my data" saves one file holding the user's session and every message they typed;
"Delete my data", once confirmed, erases them: the old session answers 404 and a repeat of the
erasure answers the same receipt.
Nothing is mocked: every request goes from Chromium to the running services. The one network
failure the test causes is an answer lost on its way back (Playwright's routing lets the
request reach the service, then drops the response), the way a flaky connection loses one.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Request, Route, expect

from tests.clients import Firestore

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
SUMMARY_INTERVAL = 5  # the service's default: a rolling summary every 5 messages
CONTEXT_WINDOW = 8  # the service's default MESSAGE_WINDOW, which the page's get_context leaves to it
TRIGGER_WAIT_S = 30
CHAT = re.compile(r".*/chat(\?.*)?$")
DELETE_MY_DATA = re.compile(r".*/delete_my_data(\?.*)?$")
# A question and its answer each: 8 messages, past the summary at 5. The shop's FAQ (the kb
# responder's sample) covers all but UNKNOWN, which it must not pretend to know.
UNKNOWN = "Can you recommend a good pizza recipe for tonight?"
QUESTIONS = [
    "How do I reset my password?",
    "Which payment methods do you accept?",
    UNKNOWN,
    "How long does delivery take to Germany?",
]
AXE = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"
LAST_QUESTION = "One more thing: can I get an invoice for my order?"

# ----------------------------------------------------------------------------- Firestore reads


def _firestore_doc(stack, path: str) -> dict:
    """A document's fields read straight from the Firestore emulator ({} when it is absent)."""
    return Firestore(stack.firestore_host, stack.project_id).get(path) or {}


# --------------------------------------------------------------------------------- page steps


def _open_and_sign_in(page: Page, url: str) -> tuple[str, str]:
    page.goto(url)
    expect(page.get_by_test_id("auth-status")).to_contain_text("anonymous")
    uid = page.get_by_test_id("auth-status").get_attribute("data-uid")
    assert uid, "the page did not sign in"
    expect(page.get_by_test_id("session-id")).to_have_text(SESSION_ID)
    expect(page.get_by_test_id("session-status")).to_have_text("active")
    return uid, page.get_by_test_id("session-id").inner_text()


def _send(page: Page, text: str, expected_count: int) -> None:
    page.get_by_test_id("composer-input").fill(text)
    page.get_by_test_id("send-button").click()
    expect(page.get_by_test_id("message-count")).to_have_text(str(expected_count))
    # The context is read back after the turn: wait for this turn in it.
    expect(page.get_by_test_id("formatted-context")).to_contain_text(text[:40])
    expect(page.get_by_test_id("status")).to_contain_text("Answered.")
    expect(page.get_by_test_id("composer-input")).to_have_value("")


def _user_turns(page: Page, text: str):
    return page.get_by_test_id("transcript").locator('[data-role="user"]').filter(has_text=text)


def _converse_past_the_summary(page: Page) -> int:
    count = 0
    for question in QUESTIONS:
        count += 2
        _send(page, question, count)
        transcript = page.get_by_test_id("transcript").get_by_test_id("message")
        expect(transcript).to_have_count(count)
        answer = transcript.nth(count - 1)
        expect(answer).to_have_attribute("data-role", "assistant")
        expect(answer.get_by_test_id("answer-confidence")).to_have_text(re.compile(r"^confidence \d{1,3}%$"))
        if question == UNKNOWN:
            # Honest about it: no sources, and it says it does not know.
            expect(answer.get_by_test_id("answer-sources")).to_have_text("no sources")
            expect(answer).to_contain_text(re.compile(r"(don't|do not) know", re.IGNORECASE))
        else:
            expect(answer.get_by_test_id("answer-sources")).to_have_text(re.compile(r"^sources: \S"))
        if count < SUMMARY_INTERVAL:
            expect(page.get_by_test_id("summary-empty")).to_be_visible()
            expect(page.get_by_test_id("summary")).to_be_hidden()

    summary = page.get_by_test_id("summary")
    expect(summary).to_be_visible()
    assert summary.inner_text().strip(), "the rolling summary is empty"
    expect(page.get_by_test_id("summary-meta")).to_contain_text(re.compile(r"Covers \d+ messages"))
    expect(page.get_by_test_id("formatted-context")).to_contain_text(QUESTIONS[-1])
    # Redis is up in this stack: the hot layer takes the writes and serves the reads.
    expect(page.get_by_test_id("storage-layer")).to_have_text("redis")
    expect(page.get_by_test_id("durable")).to_have_text("yes")
    expect(page.get_by_test_id("context-storage")).to_have_text("redis")
    assert 1 <= page.get_by_test_id("context-messages").locator("li").count() <= CONTEXT_WINDOW
    return count


def _refused_message_keeps_the_text(page: Page, count: int) -> None:
    """A message over the service's limit (32 KiB of UTF-8) is refused by the page before it
    is sent: the counter says so, Send is off, Enter says why and offers no retry; text kept.
    (The service's own 413 is checked in test_first_hour.py.)"""
    too_big = "é" * 20_000  # 40,000 bytes of UTF-8, over the 32 KiB content limit
    box = page.get_by_test_id("composer-input")
    box.fill(too_big)
    expect(page.get_by_test_id("composer-count")).to_have_attribute("data-over", "true")
    expect(page.get_by_test_id("send-button")).to_be_disabled()
    box.press("Enter")
    banner = page.get_by_test_id("error-banner")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("data-code", "content_too_large")
    expect(page.get_by_test_id("error-message")).to_contain_text("at most 32,768 bytes")
    expect(page.get_by_test_id("error-retry")).to_be_hidden()
    expect(page.get_by_test_id("composer-input")).to_have_value(too_big)
    expect(page.get_by_test_id("message-count")).to_have_text(str(count))
    assert _accessibility_violations(page) == []
    page.get_by_test_id("error-dismiss").click()
    expect(banner).to_be_hidden()


def _lost_answer_then_retry(page: Page, count: int) -> tuple[int, dict[str, Any]]:
    """The service answers a turn but the answer is lost on the way: friendly message, text
    kept; "Try again" sends the same client_message_id and gets that first answer, so the
    turn is stored and shown once. Returns the new count and the page's chat request (its URL
    and ID token) for the next check."""
    sent: list[dict[str, Any]] = []

    def lose_the_first_answer(route: Route) -> None:
        req = route.request
        if req.method != "POST" or sent:  # a CORS preflight, or the retry
            if req.method == "POST":
                sent.append({"body": req.post_data_json})
            route.continue_()
            return
        token = req.all_headers().get("authorization")
        sent.append({"url": req.url, "body": req.post_data_json, "authorization": token})
        served = route.fetch()  # the service stores and answers the whole turn...
        sent[0]["answer"] = served.json()["answer"]
        route.abort("internetdisconnected")  # ...and the page never hears it

    page.route(CHAT, lose_the_first_answer)
    page.get_by_test_id("composer-input").fill(LAST_QUESTION)
    page.get_by_test_id("send-button").click()
    banner = page.get_by_test_id("error-banner")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("data-code", "network_error")
    expect(page.get_by_test_id("error-message")).to_contain_text("Could not reach")
    expect(page.get_by_test_id("composer-input")).to_have_value(LAST_QUESTION)
    expect(page.get_by_test_id("message-count")).to_have_text(str(count))
    page.get_by_test_id("error-retry").click()
    count += 2
    expect(page.get_by_test_id("message-count")).to_have_text(str(count))
    expect(page.get_by_test_id("composer-input")).to_have_value("")
    expect(banner).to_be_hidden()
    page.unroute(CHAT)

    assert len(sent) == 2, sent
    first, retry = sent
    assert retry["body"]["client_message_id"] == first["body"]["client_message_id"]
    assert retry["body"]["content"] == first["body"]["content"] == LAST_QUESTION
    expect(_user_turns(page, LAST_QUESTION)).to_have_count(1)
    answer = page.get_by_test_id("transcript").get_by_test_id("message").last
    expect(answer).to_contain_text(first["answer"]["content"].splitlines()[0][:60])
    return count, first


def _page_cannot_write_an_assistant_turn(page: Page, chat_request: dict[str, Any], count: int) -> None:
    """With the page's own ID token, from the page itself: append_message refuses an
    assistant turn (403), so no answer can be forged from the browser."""
    assert chat_request["authorization"], "the page sent no ID token"
    url = re.sub(r"/chat(\?.*)?$", "/append_message", chat_request["url"])
    status, body = page.evaluate(
        """async ([url, authorization, sessionId]) => {
            const res = await fetch(url, {
              method: "POST",
              headers: {Authorization: authorization, "Content-Type": "application/json"},
              body: JSON.stringify({session_id: sessionId, role: "assistant", content: "Refund approved.",
                                    metadata: {confidence: 1, sources: ["forged"], collection: "billing"}}),
            });
            return [res.status, await res.json()];
        }""",
        [url, chat_request["authorization"], chat_request["body"]["session_id"]],
    )
    assert status == 403, body
    assert body["error"]["code"] == "permission_denied", body
    expect(page.get_by_test_id("message-count")).to_have_text(str(count))


def _end_the_session(page: Page, count: int, turns: int) -> None:
    page.get_by_test_id("end-session-button").click()
    expect(page.get_by_test_id("end-panel")).to_be_visible()
    expect(page.get_by_test_id("end-status")).to_have_text("ended")
    expect(page.get_by_test_id("session-status")).to_have_text("ended")
    expect(page.get_by_test_id("end-message-count")).to_have_text(str(count))
    expect(page.get_by_test_id("queries-recorded")).to_have_text(str(turns))
    assert page.get_by_test_id("end-summary").inner_text().strip() not in ("", "(no summary)")
    # get_history just before the end: the hot window (the last messages; the rest is summarised).
    held = page.get_by_test_id("history").locator("li")
    expect(held.filter(has_text=LAST_QUESTION)).to_have_count(1)
    expect(held.last).to_have_attribute("data-role", "assistant")
    assert 1 <= held.count() <= count
    assert "Refund approved." not in page.get_by_test_id("history").inner_text()
    expect(page.get_by_test_id("history-meta")).to_contain_text(f"of {count} messages")
    expect(page.get_by_test_id("history-after")).to_contain_text("messages (served by")
    expect(page.get_by_test_id("send-button")).to_be_disabled()
    expect(page.get_by_test_id("new-session-button")).to_be_visible()
    expect(page.get_by_test_id("status")).to_contain_text("Analytics written")
    # The user stats the trigger wrote, read back over HTTP (get_user_stats) by the page.
    expect(page.get_by_test_id("user-stats-status")).to_have_text("counted.", timeout=30_000)
    expect(page.get_by_test_id("stats-messages")).to_have_text(str(count))
    expect(page.get_by_test_id("stats-queries")).to_have_text(str(turns))


def _check_what_was_written(stack, uid: str, session_id: str, count: int, turns: int) -> None:
    if not stack.firestore_host:
        pytest.fail("FIRESTORE_EMULATOR_HOST is unknown: cannot check the analytics and user stats")
    analytics = _firestore_doc(stack, f"analytics/{session_id}")
    assert analytics, f"no analytics/{session_id} document"
    queries = analytics.get("queries") or []
    assert len(queries) == turns, analytics
    # Each answer with the question it answers, once, and the sources the page showed.
    assert [q.get("query") for q in queries] == [*QUESTIONS, LAST_QUESTION], queries
    assert all(bool(q.get("sources")) == (q["query"] != UNKNOWN) for q in queries), queries

    deadline = time.monotonic() + TRIGGER_WAIT_S  # the trigger runs asynchronously after the end
    stats: dict = {}
    while time.monotonic() < deadline:
        stats = _firestore_doc(stack, f"users/{uid}")
        if session_id in (stats.get("recent_sessions") or []):
            break
        time.sleep(0.5)
    assert stats.get("total_sessions") == 1, f"on_session_ended did not update users/{uid}: {stats}"
    assert stats.get("total_messages") == count, stats
    assert stats.get("total_queries") == turns, stats
    assert (stats.get("recent_sessions") or [None])[0] == session_id, stats


def _accessibility_violations(page: Page) -> list[dict]:
    """WCAG 2 A/AA violations found by axe-core (web/package.json pins it), serious or worse."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm --prefix web ci`")
    # Evaluated by the test's driver (DevTools), not added as a <script>: the page's
    # Content-Security-Policy refuses inline scripts, as it should.
    page.evaluate(AXE.read_text(encoding="utf-8"))
    found = page.evaluate(
        """async () => (await axe.run(document, {runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}))
              .violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                     targets: v.nodes.map(n => n.target.join(" "))}))"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


# ------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("api", ["hosting", "direct"])
def test_console_converses_summarises_and_ends(page: Page, stack, artifacts_dir: Path, api: str) -> None:
    """api="hosting": /api/<name> through Hosting's rewrites (same origin, as deployed);
    api="direct": the functions' own URLs from the Hosting origin (CORS preflights and all)."""
    uid, session_id = _open_and_sign_in(page, stack.page_url(api))
    expected_api = "/api" if api == "hosting" else stack.functions_url
    expect(page.get_by_test_id("config-note")).to_contain_text(f"Functions: {expected_api}/<name>")
    expect(page.get_by_test_id("answer-note")).to_contain_text("chat")
    expect(page.get_by_test_id("health")).to_contain_text("ok")

    count = _converse_past_the_summary(page)
    _refused_message_keeps_the_text(page, count)
    count, chat_request = _lost_answer_then_retry(page, count)
    _page_cannot_write_an_assistant_turn(page, chat_request, count)
    turns = len(QUESTIONS) + 1
    _end_the_session(page, count, turns)

    assert _accessibility_violations(page) == []

    shot = "console.png" if api == "hosting" else f"console-{api}.png"
    page.screenshot(path=str(artifacts_dir / shot), full_page=True)
    _check_what_was_written(stack, uid, session_id, count, turns)


def test_reload_keeps_the_draft_and_the_session(page: Page, stack) -> None:
    """Typed text is never lost: a draft survives a reload, and so does the session. A turn
    whose answer was lost before the reload is sent again under its first id: shown once."""
    _, session_id = _open_and_sign_in(page, stack.page_url())
    _send(page, "How do I track my parcel?", 2)
    draft = "Which countries do you ship to?"
    page.get_by_test_id("composer-input").fill(draft)

    page.reload()
    expect(page.get_by_test_id("status")).to_contain_text("Session restored")
    expect(page.get_by_test_id("session-id")).to_have_text(session_id)
    expect(page.get_by_test_id("composer-input")).to_have_value(draft)
    expect(page.get_by_test_id("transcript").get_by_test_id("message")).to_have_count(2)
    expect(page.get_by_test_id("formatted-context")).to_contain_text("track my parcel")

    ids: list[str] = []

    def lose_the_answer(route: Route) -> None:
        if route.request.method != "POST":  # a CORS preflight
            route.continue_()
            return
        ids.append(route.request.post_data_json["client_message_id"])
        route.fetch()
        route.abort("internetdisconnected")

    page.route(CHAT, lose_the_answer)
    page.get_by_test_id("send-button").click()
    expect(page.get_by_test_id("error-banner")).to_have_attribute("data-code", "network_error")
    page.unroute(CHAT)
    page.reload()
    expect(page.get_by_test_id("status")).to_contain_text("Session restored")
    # The service kept the whole turn; the page kept the text until it hears the answer.
    expect(page.get_by_test_id("transcript").get_by_test_id("message")).to_have_count(4)
    expect(page.get_by_test_id("composer-input")).to_have_value(draft)
    with page.expect_request(CHAT) as again:
        _send(page, draft, 4)
    assert again.value.post_data_json["client_message_id"] == ids[0]
    expect(page.get_by_test_id("transcript").get_by_test_id("message")).to_have_count(4)
    expect(_user_turns(page, draft)).to_have_count(1)


def test_download_my_data(page: Page, stack, tmp_path: Path) -> None:
    """A user who has chatted downloads everything held about them: one JSON file, built by
    the page from every export_my_data page, holding this session and each message typed."""
    uid, session_id = _open_and_sign_in(page, stack.page_url())
    typed = QUESTIONS[:2]
    for turn, question in enumerate(typed, start=1):
        _send(page, question, 2 * turn)

    button = page.get_by_test_id("download-data-button")
    expect(button).to_be_enabled()
    with page.expect_download() as info:
        button.click()
    download = info.value
    assert download.suggested_filename == "chat-memory-export.json"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    expect(page.get_by_test_id("status")).to_contain_text("Downloaded chat-memory-export.json")
    expect(page.get_by_test_id("error-banner")).to_be_hidden()

    data = json.loads(saved.read_text(encoding="utf-8"))
    assert set(data) == {"user_id", "user", "sessions", "exported_at"}, data.keys()
    assert data["user_id"] == uid
    sessions = {s["session_id"]: s for s in data["sessions"]}
    assert session_id in sessions, list(sessions)
    mine = sessions[session_id]
    assert mine["status"] == "active", mine
    assert [m["content"] for m in mine["messages"] if m["role"] == "user"] == typed, mine["messages"]
    assert [m["role"] for m in mine["messages"]] == ["user", "assistant"] * len(typed), mine["messages"]
    # Each answer's analytics entry is buffered while the session is active: exported too.
    assert [q["query"] for q in mine["analytics"]] == typed, mine["analytics"]


def _from_the_page(page: Page, url: str, authorization: str, body: dict | None = None) -> tuple[int, dict]:
    """One request from the page's own context with its ID token: a GET, or a POST of body."""
    return page.evaluate(
        """async ([url, authorization, body]) => {
            const init = {headers: {Authorization: authorization}};
            if (body !== null) {
              init.method = "POST";
              init.headers["Content-Type"] = "application/json";
              init.body = JSON.stringify(body);
            }
            const res = await fetch(url, init);
            return [res.status, await res.json()];
        }""",
        [url, authorization, body],
    )


def _cancel_changes_nothing(page: Page, session_id: str, erasures: list[str]) -> None:
    """Given the confirm panel open, when the user cancels, then nothing is sent or changed."""
    button = page.get_by_test_id("delete-data-button")
    confirm = page.get_by_test_id("erase-confirm")
    word = page.get_by_test_id("erase-word")
    button.click()
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("Every session, every message and every analytics entry")
    expect(confirm).to_contain_text("cannot be undone")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(word).to_be_focused()
    expect(page.get_by_test_id("erase-submit")).to_be_disabled()
    word.fill("DELET")
    expect(page.get_by_test_id("erase-submit")).to_be_disabled()
    # The page asks for DELETE: the word in lower (or mixed) case is not it.
    for typed in ("delete", "Delete"):
        word.fill(typed)
        expect(page.get_by_test_id("erase-submit")).to_be_disabled()
    assert _accessibility_violations(page) == []
    page.get_by_test_id("erase-cancel").click()
    expect(confirm).to_be_hidden()
    expect(button).to_be_focused()
    expect(page.get_by_test_id("session-id")).to_have_text(session_id)
    expect(page.get_by_test_id("session-status")).to_have_text("active")
    expect(page.get_by_test_id("message-count")).to_have_text("2")
    expect(page.get_by_test_id("transcript").get_by_test_id("message")).to_have_count(2)
    expect(page.get_by_test_id("erase-receipt")).to_be_hidden()
    assert erasures == []


def _confirm_and_erase(page: Page) -> tuple[Request, str]:
    """When the user types DELETE and erases, then one POST of {"confirm": true} goes, the
    receipt shows its counts and the page is fresh. Returns the request and the receipt id."""
    page.get_by_test_id("delete-data-button").click()
    word = page.get_by_test_id("erase-word")
    expect(word).to_have_value("")
    word.fill("DELETE")
    erase = page.get_by_test_id("erase-submit")
    expect(erase).to_be_enabled()
    with page.expect_request(lambda r: bool(DELETE_MY_DATA.match(r.url)) and r.method == "POST") as sent:
        erase.click()
    request = sent.value
    assert request.post_data_json == {"confirm": True}
    receipt = page.get_by_test_id("erase-receipt")
    expect(receipt).to_be_visible()
    expect(page.get_by_test_id("erase-confirm")).to_be_hidden()
    expect(page.get_by_test_id("error-banner")).to_be_hidden()
    assert int(page.get_by_test_id("erased-sessions").inner_text()) >= 1
    assert int(page.get_by_test_id("erased-messages").inner_text()) >= 2
    receipt_id = receipt.get_attribute("data-receipt-id")
    assert receipt_id, "the page shows no receipt id"
    expect(page.get_by_test_id("receipt-sentence")).to_contain_text(f"Receipt {receipt_id}.")
    expect(page.get_by_test_id("status")).to_contain_text("Erased:")
    # A fresh page: the old session is gone from it.
    expect(page.get_by_test_id("session-id")).to_have_text("none yet")
    expect(page.get_by_test_id("session-status")).to_be_hidden()
    expect(page.get_by_test_id("message-count")).to_have_text("0")
    expect(page.get_by_test_id("transcript").get_by_test_id("message")).to_have_count(0)
    expect(page.get_by_test_id("send-button")).to_be_enabled()
    return request, receipt_id


def test_delete_my_data(page: Page, stack) -> None:
    """A user who has chatted opens "Delete my data": Cancel leaves the session as it was; typing
    DELETE and "Erase everything" erases it, the receipt counts the session and its messages,
    and the page forgets the session. Then, with the page's own ID token, the old session
    answers 404 and a second erasure answers the same receipt; the next message starts a new
    session."""
    _, session_id = _open_and_sign_in(page, stack.page_url())
    _send(page, QUESTIONS[0], 2)
    erasures: list[str] = []
    page.on("request", lambda r: erasures.append(r.url) if DELETE_MY_DATA.match(r.url) and r.method == "POST" else None)

    _cancel_changes_nothing(page, session_id, erasures)
    request, receipt_id = _confirm_and_erase(page)
    assert len(erasures) == 1, erasures
    assert _accessibility_violations(page) == []

    # Then, from the page with its own ID token: the session is gone, and the erasure is idempotent.
    authorization = request.all_headers().get("authorization")
    assert authorization, "the page sent no ID token"
    history = re.sub(r"/delete_my_data(\?.*)?$", f"/get_history?session_id={session_id}", request.url)
    status, body = _from_the_page(page, history, authorization)
    assert status == 404, body
    assert body["error"]["code"] == "not_found", body
    status, again = _from_the_page(page, request.url, authorization, {"confirm": True})
    assert status == 200, again
    assert again["receipt_id"] == receipt_id, again
    assert again["complete"] is True, again

    # The next message starts a new session, as after an end.
    _send(page, QUESTIONS[1], 2)
    expect(page.get_by_test_id("session-id")).to_have_text(SESSION_ID)
    assert page.get_by_test_id("session-id").inner_text() != session_id
    expect(page.get_by_test_id("erase-receipt")).to_be_hidden()
