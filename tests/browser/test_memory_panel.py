"""The console's "What I remember" panel and its memory-off switch, in a real browser against
the real stack (issue 21).

Given the page served by Hosting, the Auth, Firestore and Functions emulators, Redis and the
emulated on_session_ended trigger (which writes an ended session's memory, its digest, into
users/{uid}/memories/{sid}), when a user tells the assistant their cat's name and ends the
chat, then the panel lists that memory (its date and text) once the trigger has written it;
in the next chat a question about the cat recalls it, and the panel says so (and with what
score); "Forget" deletes it: gone from the panel, after a reload, and from list_memories.
With "Remember this chat" unchecked the next session is created with "memory": false: the
page says the session is not remembered, nothing is recalled into it, and once it has ended
and the trigger has counted it, no memory of it exists. More memories than a page: "More"
reads the older ones, newest first throughout.

Every wait is on an event: the panel's list (expect), the trigger's count of the session
(the page's "counted.", read from get_user_stats), a response. Nothing is mocked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, Request, expect

from tests.browser.test_console import SESSION_ID, _accessibility_violations, _open_and_sign_in, _send
from tests.clients import Api, Firestore, User

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# The trigger writes the memory after end_session returns: as long as test_console allows it
# to count a session (the memory is written in the same transaction as that count).
TRIGGER_WAIT_MS = 30_000
CAT_FACT = "Please remember this: my cat is called Bartholomew."
CAT_QUESTION = "What is my cat called again?"
PARCEL = "How do I track my parcel?"
CREATE_SESSION = re.compile(r".*/create_session(\?.*)?$")
LIST_MEMORIES = re.compile(r".*/list_memories(\?.*)?$")
DELETE_MEMORY = re.compile(r".*/delete_memory(\?.*)?$")
CHAT = re.compile(r".*/chat(\?.*)?$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def _posted(pattern: re.Pattern[str]):
    return lambda r: bool(pattern.match(r.url)) and r.method == "POST"


def _memories(page: Page) -> Locator:
    return page.get_by_test_id("memory-list").get_by_test_id("memory")


def _memory(page: Page, session_id: str) -> Locator:
    return page.get_by_test_id("memory-list").locator(f'[data-testid="memory"][data-session-id="{session_id}"]')


def _end_and_await_the_trigger(page: Page, count: int, sessions: int) -> None:
    """End the session; the trigger counts it into the user's stats (the page reads them back
    with get_user_stats until this session is among them: the user's `sessions`-th). The memory
    of a remembered session is written in the same transaction as that count
    (shared/store/firestore/stats.py)."""
    page.get_by_test_id("end-session-button").click()
    expect(page.get_by_test_id("end-status")).to_have_text("ended")
    expect(page.get_by_test_id("end-message-count")).to_have_text(str(count))
    expect(page.get_by_test_id("user-stats-status")).to_have_text("counted.", timeout=TRIGGER_WAIT_MS)
    expect(page.get_by_test_id("stats-sessions")).to_have_text(str(sessions))


def _new_session(page: Page, old: str) -> tuple[str, dict]:
    """Clicks "Start a new session": returns its id and the create_session request's body."""
    with page.expect_request(_posted(CREATE_SESSION)) as created:
        page.get_by_test_id("new-session-button").click()
    expect(page.get_by_test_id("session-status")).to_have_text("active")
    expect(page.get_by_test_id("session-id")).not_to_have_text(old)
    expect(page.get_by_test_id("session-id")).to_have_text(SESSION_ID)
    return page.get_by_test_id("session-id").inner_text(), created.value.post_data_json


def _listed_through_the_api(api: Api, uid: str, request: Request) -> list[str]:
    """list_memories with the page's own ID token (taken from one of its requests)."""
    authorization = request.all_headers().get("authorization") or ""
    assert authorization.startswith("Bearer "), "the page sent no ID token"
    r = api.get("list_memories", {"limit": 50}, User(uid, authorization.removeprefix("Bearer ")))
    assert r.status == 200, r.text
    return [m["session_id"] for m in r.body["items"]]


def _told_and_listed(page: Page, session_id: str) -> Locator:
    """The user tells the assistant their cat's name and ends the chat: once the trigger has
    written the memory, the panel (re-read by the page after the end) lists it."""
    expect(page.get_by_test_id("memory-panel")).to_have_attribute("data-state", "loaded")
    expect(page.get_by_test_id("memory-empty")).to_be_visible()  # a new user: nothing remembered yet
    expect(page.get_by_test_id("session-memory")).to_have_text("yes")
    # The switch belongs to the next chat: shown beside "Start a new session", once there is one to start.
    expect(page.get_by_test_id("memory-switch")).to_be_hidden()
    _send(page, CAT_FACT, 2)
    _send(page, PARCEL, 4)
    _end_and_await_the_trigger(page, 4, 1)

    item = _memory(page, session_id)
    expect(item).to_be_visible(timeout=TRIGGER_WAIT_MS)
    expect(_memories(page)).to_have_count(1)
    expect(page.get_by_test_id("memory-empty")).to_be_hidden()
    expect(item.get_by_test_id("memory-text")).to_contain_text("Bartholomew")
    expect(item.get_by_test_id("memory-date")).to_have_attribute("datetime", ISO_DATE)
    assert item.get_by_test_id("memory-date").inner_text().strip()
    expect(item.get_by_test_id("memory-recalled")).to_be_hidden()  # nothing has recalled it yet
    return item


def _recalled_in_the_next_chat(page: Page, item: Locator, first: str) -> str:
    """A new chat, remembered (the switch's default): the question about the cat recalls the
    memory, and the panel says so with the score the service answered. Returns the session."""
    switch = page.get_by_test_id("memory-switch")
    expect(switch).to_be_visible()
    expect(switch).to_be_checked()
    second, body = _new_session(page, first)
    assert body.get("memory") is True, body
    expect(page.get_by_test_id("session-memory")).to_have_text("yes")
    expect(switch).to_be_hidden()
    with page.expect_response(lambda r: bool(CHAT.match(r.url)) and r.request.method == "POST") as answered:
        _send(page, CAT_QUESTION, 2)
    recalled_by_the_service = answered.value.json()["memories"]
    assert [m["session_id"] for m in recalled_by_the_service] == [first], recalled_by_the_service
    why = item.get_by_test_id("memory-recalled")
    expect(why).to_be_visible()
    expect(why).to_contain_text(re.compile(r"recalled for this conversation, score \d+\.\d\d"))
    shown = float(re.search(r"score (\d+\.\d+)", why.inner_text()).group(1))  # type: ignore[union-attr]
    assert shown == pytest.approx(recalled_by_the_service[0]["score"], abs=0.005)
    expect(page.get_by_test_id("formatted-context")).to_contain_text("Bartholomew")
    return second


def _searched(page: Page, item: Locator) -> None:
    """The search box finds the memory by the user's own word; "Show all" lists them again."""
    page.get_by_test_id("memory-search-input").fill("Bartholomew")
    page.get_by_test_id("memory-search-button").click()
    expect(page.get_by_test_id("memory-search-note")).to_contain_text("Bartholomew")
    expect(_memories(page)).to_have_count(1)
    expect(item.get_by_test_id("memory-match")).to_contain_text(re.compile(r"match score \d+\.\d\d"))
    page.get_by_test_id("memory-search-clear").click()
    expect(page.get_by_test_id("memory-search-note")).to_be_hidden()
    expect(item.get_by_test_id("memory-match")).to_have_count(0)
    expect(item.get_by_test_id("memory-recalled")).to_be_visible()


def _forgotten(page: Page, item: Locator, first: str, second: str) -> Request:
    """The "Forget" button calls delete_memory for this session and the memory leaves the panel;
    "Refresh" and a reload read the list again, and it is not there. Returns that request."""
    with page.expect_request(_posted(DELETE_MEMORY)) as sent:
        item.get_by_test_id("memory-forget").click()
    assert sent.value.post_data_json == {"session_id": first}
    expect(item).to_have_count(0)
    expect(page.get_by_test_id("memory-empty")).to_be_visible()
    expect(page.get_by_test_id("error-banner")).to_be_hidden()

    panel = page.get_by_test_id("memory-panel")
    with page.expect_response(lambda r: bool(LIST_MEMORIES.match(r.url)) and r.ok):
        page.get_by_test_id("memory-refresh").click()
    expect(panel).to_have_attribute("data-state", "loaded")
    expect(_memories(page)).to_have_count(0)
    page.reload()
    expect(page.get_by_test_id("session-id")).to_have_text(second)
    expect(panel).to_have_attribute("data-state", "loaded")
    expect(_memories(page)).to_have_count(0)
    expect(page.get_by_test_id("memory-empty")).to_be_visible()
    return sent.value


def test_the_panel_lists_recalls_and_forgets_a_memory(page: Page, stack, api: Api, artifacts_dir: Path) -> None:
    uid, first = _open_and_sign_in(page, stack.page_url())
    item = _told_and_listed(page, first)
    second = _recalled_in_the_next_chat(page, item, first)
    _searched(page, item)
    assert _accessibility_violations(page) == []
    page.screenshot(path=str(artifacts_dir / "memory-panel.png"), full_page=True)
    request = _forgotten(page, item, first, second)
    assert first not in _listed_through_the_api(api, uid, request)


def test_a_chat_with_the_switch_off_leaves_no_memory(page: Page, stack, api: Api) -> None:
    uid, kept = _open_and_sign_in(page, stack.page_url())
    _send(page, "My dog is called Rex. " + PARCEL, 2)
    _end_and_await_the_trigger(page, 2, 1)
    # A remembered session's memory first: the panel shows it once the trigger has written it.
    expect(_memory(page, kept)).to_be_visible(timeout=TRIGGER_WAIT_MS)

    switch = page.get_by_test_id("memory-switch")
    expect(switch).to_be_checked()
    switch.uncheck()
    off, body = _new_session(page, kept)
    assert body.get("memory") is False, body
    expect(page.get_by_test_id("session-memory")).to_contain_text("no")

    # A memory-off session recalls nothing, even a question the kept memory would answer.
    with page.expect_response(lambda r: bool(CHAT.match(r.url)) and r.request.method == "POST") as answered:
        _send(page, "What is my dog called? " + PARCEL, 2)
    assert answered.value.json()["memories"] == []
    expect(_memory(page, kept).get_by_test_id("memory-recalled")).to_be_hidden()

    # Ended and counted by the trigger: had the session been remembered, its memory would have
    # been written in that same transaction. The panel, read again, holds the kept one only.
    _end_and_await_the_trigger(page, 2, 2)
    expect(switch).not_to_be_checked()  # the user's choice holds for the next chat too
    with page.expect_response(lambda r: bool(LIST_MEMORIES.match(r.url)) and r.ok) as listed:
        page.get_by_test_id("memory-refresh").click()
    expect(page.get_by_test_id("memory-panel")).to_have_attribute("data-state", "loaded")
    expect(_memories(page)).to_have_count(1)
    expect(_memory(page, kept)).to_be_visible()
    expect(_memory(page, off)).to_have_count(0)
    assert _listed_through_the_api(api, uid, listed.value.request) == [kept]


def test_more_reads_the_older_memories(page: Page, stack, api: Api, firestore: Firestore) -> None:
    """More memories than the panel's page (10): the first page, newest first, then "More"."""
    with page.expect_request(lambda r: bool(LIST_MEMORIES.match(r.url))) as first_read:
        uid, _ = _open_and_sign_in(page, stack.page_url())
    authorization = first_read.value.all_headers().get("authorization") or ""
    user = User(uid, authorization.removeprefix("Bearer "))
    # Eleven ended chats of the page's own user, over HTTP with its ID token.
    ended: list[str] = []
    for n in range(11):
        r = api.post("create_session", {"memory": True}, user)
        assert r.status == 201, r.text
        sid = r.body["session_id"]
        assert api.chat(user, sid, f"Note {n}: how do I track parcel number {n}?").status == 201
        assert api.end(user, sid).status == 200
        ended.append(sid)
    # Counted by the trigger, and so remembered (the memory is written in the same transaction).
    firestore.wait_for(f"users/{uid}", lambda d: d.get("total_sessions") == len(ended), timeout=60)

    with page.expect_response(lambda r: bool(LIST_MEMORIES.match(r.url)) and r.ok):
        page.get_by_test_id("memory-refresh").click()
    expect(page.get_by_test_id("memory-panel")).to_have_attribute("data-state", "loaded")
    newest_first = ended[::-1]
    expect(_memories(page)).to_have_count(10)
    more = page.get_by_test_id("memory-more")
    expect(more).to_be_visible()
    more.click()
    expect(_memories(page)).to_have_count(11)
    expect(more).to_be_hidden()
    shown = [item.get_attribute("data-session-id") for item in _memories(page).all()]
    assert shown == newest_first, (shown, newest_first)
