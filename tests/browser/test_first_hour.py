"""The console and the admin page in a newcomer's first hour (issue "The first hour", section
"The console"), in a real browser against the real stack, at a laptop's size (1280x800) and a
phone's (375x740), with a screenshot of each in the artifacts dir:

1. a long message is counted in UTF-8 bytes, the service's limit, and refused before it is
   sent (never cut silently); a message the service refuses (4xx) offers no "Try again";
2. Enter pressed just after an answer appears sends the next message (the context read-back
   does not hold it up);
3. the message box stays on screen, on the first screen and after some turns;
4. an error of the admin page's "One session" box shows beside the box;
5. the header keeps its place when the uid, the session and the health arrive; the `redis`
   storage badge does not read as an error;
6. a session that cannot be restored after a reload is replaced once, and the user is told;
   a restore that failed on the way (no answer) starts no session and can be tried again;
7. every page has its icon: no 404, no console error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.browser.test_admin import _admin_url, _grant_admin
from tests.browser.test_console import CHAT, SESSION_ID, _open_and_sign_in, _send

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SIZES = {"desktop": (1280, 800), "phone": (375, 740)}
GET_CONTEXT = re.compile(r".*/get_context(\?.*)?$")
GET_HISTORY = re.compile(r".*/get_history(\?.*)?$")
CREATE_SESSION = re.compile(r".*/create_session(\?.*)?$")
HEALTH = re.compile(r".*/health(\?.*)?$")
SIGN_UP = re.compile(r".*accounts:signUp.*")
LIMIT = 32 * 1024  # the service's MAX_CONTENT_BYTES default (shared/settings.py)
QUESTIONS = [
    "How do I reset my password?",
    "Which payment methods do you accept?",
    "How long does delivery take to Germany?",
    "Can I get an invoice for my order?",
]


@pytest.fixture(params=list(SIZES))
def size(request: pytest.FixtureRequest, page: Page) -> str:
    width, height = SIZES[request.param]
    page.set_viewport_size({"width": width, "height": height})
    return request.param


def _shot(page: Page, artifacts_dir: Path, name: str, size: str) -> None:
    """What the user sees (the viewport, not the whole page)."""
    page.screenshot(path=str(artifacts_dir / f"{name}-{size}.png"))


def _box(locator: Locator) -> dict:
    box = locator.bounding_box()
    assert box, f"{locator} has no box (hidden?)"
    return box


def _on_screen(page: Page, locator: Locator) -> None:
    """Wholly inside the viewport, and not covered by anything else at its centre."""
    box = _box(locator)
    vp = page.viewport_size
    assert vp
    assert box["y"] >= -0.5 and box["y"] + box["height"] <= vp["height"] + 0.5, (box, vp)
    assert box["x"] >= -0.5 and box["x"] + box["width"] <= vp["width"] + 0.5, (box, vp)
    uncovered = locator.evaluate(
        """(node) => { const r = node.getBoundingClientRect();
                       const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                       return !!hit && (hit === node || node.contains(hit)); }"""
    )
    assert uncovered, f"{locator} is covered by another element"


def _chat_posts(page: Page) -> list[str]:
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if CHAT.match(r.url) and r.method == "POST" else None)
    return posts


# ------------------------------------------------------------------- 1. the size of a message


def test_a_long_message_is_counted_in_bytes_and_refused_before_it_is_sent(
    page: Page, stack, artifacts_dir: Path, size: str
) -> None:
    _open_and_sign_in(page, stack.page_url())
    posts = _chat_posts(page)
    box = page.get_by_test_id("composer-input")
    counter = page.get_by_test_id("composer-count")
    send = page.get_by_test_id("send-button")
    expect(counter).to_be_visible()
    expect(counter).to_have_text(f"0 / {LIMIT:,} bytes")

    # Pasted whole, never cut: 40,000 characters stay 40,000 characters.
    box.fill("a" * 40_000)
    assert box.evaluate("(n) => n.value.length") == 40_000
    expect(counter).to_contain_text(f"40,000 / {LIMIT:,} bytes")
    expect(counter).to_contain_text(f"{40_000 - LIMIT:,} too many")
    expect(counter).to_have_attribute("data-over", "true")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(send).to_be_disabled()
    _shot(page, artifacts_dir, "long-message", size)
    box.press("Enter")
    banner = page.get_by_test_id("error-banner")
    expect(banner).to_have_attribute("data-code", "content_too_large")
    expect(page.get_by_test_id("error-message")).to_contain_text(f"{LIMIT:,} bytes")
    expect(page.get_by_test_id("error-retry")).to_be_hidden()
    assert box.evaluate("(n) => n.value.length") == 40_000

    # Bytes, not characters: "é" is two bytes of UTF-8.
    box.fill("é" * (LIMIT // 2))
    expect(counter).to_have_text(f"{LIMIT:,} / {LIMIT:,} bytes")
    expect(send).to_be_enabled()
    box.fill("é" * (LIMIT // 2 + 1))
    expect(counter).to_have_attribute("data-over", "true")
    expect(send).to_be_disabled()
    assert posts == []
    page.get_by_test_id("error-dismiss").click()

    # The service's own refusal (a 4xx: here the body is made too large on its way): the text
    # stays, and no "Try again" is offered, as the same request can only fail again.
    def too_large(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        body = route.request.post_data_json
        body["content"] = "é" * 20_000
        route.continue_(post_data=json.dumps(body))

    page.route(CHAT, too_large)
    box.fill(QUESTIONS[0])
    send.click()
    expect(banner).to_have_attribute("data-code", "payload_too_large")
    expect(page.get_by_test_id("error-retry")).to_be_hidden()
    expect(box).to_have_value(QUESTIONS[0])
    expect(page.get_by_test_id("message-count")).to_have_text("0")
    page.unroute(CHAT)
    assert len(posts) == 1, posts


# --------------------------------------------------------------- 2. Enter right after an answer


def test_enter_just_after_an_answer_sends_the_next_message(page: Page, stack, artifacts_dir: Path, size: str) -> None:
    _open_and_sign_in(page, stack.page_url())
    held: list[Route] = []
    page.route(GET_CONTEXT, lambda route: held.append(route))  # noqa: PLW0108 - the read-back waits until released
    box = page.get_by_test_id("composer-input")
    box.fill(QUESTIONS[0])
    box.press("Enter")
    messages = page.get_by_test_id("transcript").get_by_test_id("message")
    expect(messages).to_have_count(2)
    expect(box).to_have_value("")
    page.wait_for_function("() => true")  # let the route handler record the read
    assert len(held) == 1, "the page did not read the context back"

    box.fill(QUESTIONS[1])
    with page.expect_request(lambda r: bool(CHAT.match(r.url)) and r.method == "POST", timeout=5_000) as sent:
        box.press("Enter")
    assert sent.value.post_data_json["content"] == QUESTIONS[1]
    expect(messages).to_have_count(4)
    expect(page.get_by_test_id("message-count")).to_have_text("4")
    for route in held:
        route.continue_()
    page.unroute(GET_CONTEXT)  # (a read held meanwhile goes on as the route is removed)
    # The context shown is the newest read's (the older one, answered later, is not drawn over it).
    expect(page.get_by_test_id("formatted-context")).to_contain_text(QUESTIONS[1])
    expect(page.get_by_test_id("status")).to_contain_text("Answered. 4 messages")
    _shot(page, artifacts_dir, "enter-after-answer", size)


# ------------------------------------------------------------------ 3. the message box on screen


def test_the_message_box_stays_on_screen(page: Page, stack, artifacts_dir: Path, size: str) -> None:
    _open_and_sign_in(page, stack.page_url())
    _on_screen(page, page.get_by_test_id("composer-input"))
    _on_screen(page, page.get_by_test_id("send-button"))
    _shot(page, artifacts_dir, "composer-first-screen", size)
    for turn, question in enumerate(QUESTIONS, start=1):
        _send(page, question, 2 * turn)
        _on_screen(page, page.get_by_test_id("composer-input"))
        _on_screen(page, page.get_by_test_id("send-button"))
        # The newest answer is where the user reads it: its first line not under the composer.
        last = page.get_by_test_id("transcript").get_by_test_id("message").last
        top = _box(last)["y"]
        assert 0 <= top < _box(page.get_by_test_id("composer"))["y"], (top, turn)
    _shot(page, artifacts_dir, "composer-four-turns", size)


# ------------------------------------------------------------ 4. the admin page's session box


def test_an_error_of_the_session_box_shows_beside_it(page: Page, stack, artifacts_dir: Path, size: str) -> None:
    page.goto(_admin_url(stack))
    expect(page.get_by_test_id("not-admin")).to_be_visible()
    _grant_admin(stack, page.get_by_test_id("auth-status").get_attribute("data-uid"))
    page.get_by_test_id("check-again").click()
    expect(page.get_by_test_id("admin-main")).to_be_visible()

    panel = page.get_by_test_id("session-panel")
    field = page.get_by_test_id("session-input")
    field.scroll_into_view_if_needed()
    field.press("Enter")  # no id typed
    banner = panel.get_by_test_id("error-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("session id")
    _on_screen(page, banner)

    field.fill("0" * 32)  # no such session: 404
    field.press("Enter")
    expect(banner).to_have_attribute("data-code", "not_found")
    _on_screen(page, banner)
    expect(page.get_by_test_id("error-retry")).to_be_hidden()  # the same id can only fail again
    _shot(page, artifacts_dir, "admin-session-error", size)


# -------------------------------------------------------------------------------- 5. the header


def _header_layout(page: Page) -> list[float]:
    """Left, top and height of the header, of each of its facts and of what comes under it."""
    return page.evaluate(
        """() => [document.querySelector("header.top"), ...document.querySelectorAll("header.top .facts > div"),
                  document.querySelector("[data-testid=answer-note]")]
                 .flatMap((n) => { const r = n.getBoundingClientRect(); return [r.left, r.top, r.height]; })"""
    )


def test_the_header_keeps_its_place_and_the_redis_badge_reads_as_fine(
    page: Page, stack, artifacts_dir: Path, size: str
) -> None:
    held: list[Route] = []
    page.route(SIGN_UP, lambda route: held.append(route))  # noqa: PLW0108 - playwright inspects the handler's parameters
    page.route(HEALTH, lambda route: held.append(route))  # noqa: PLW0108 - playwright inspects the handler's parameters
    page.goto(stack.page_url())
    expect(page.get_by_test_id("auth-status")).to_contain_text("signing in")
    page.wait_for_function("() => document.fonts.status === 'loaded'")
    before = _header_layout(page)
    _shot(page, artifacts_dir, "header-signing-in", size)
    for route in held:
        route.continue_()
    page.unroute(SIGN_UP)
    page.unroute(HEALTH)
    expect(page.get_by_test_id("session-id")).to_have_text(SESSION_ID)
    expect(page.get_by_test_id("session-status")).to_have_text("active")
    expect(page.get_by_test_id("health")).to_contain_text("ok")
    after = _header_layout(page)
    assert after == pytest.approx(before, abs=0.5), (before, after)

    _send(page, QUESTIONS[0], 2)
    badge = page.get_by_test_id("storage-layer").locator(".layer")
    expect(badge).to_have_text("redis")
    r, g, b = (int(x) for x in re.findall(r"\d+", badge.evaluate("(n) => getComputedStyle(n).backgroundColor"))[:3])
    fr, fg, fb = (int(x) for x in re.findall(r"\d+", badge.evaluate("(n) => getComputedStyle(n).color"))[:3])
    assert not (r > g + 20 and r > b + 20), f"the redis badge is red-ish: rgb({r}, {g}, {b})"
    assert not (fr > fg + 60 and fr > fb + 60), f"the redis badge's text is red: rgb({fr}, {fg}, {fb})"
    _shot(page, artifacts_dir, "header-ready", size)


# ------------------------------------------------------------------------- 6. a lost session


def _requests(page: Page, pattern: re.Pattern) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if pattern.match(r.url) and r.method == "POST" else None)
    return seen


def test_a_lost_session_is_replaced_once_and_the_user_told(page: Page, stack, artifacts_dir: Path, size: str) -> None:
    uid, first = _open_and_sign_in(page, stack.page_url())
    created = _requests(page, CREATE_SESSION)
    notice = page.get_by_test_id("session-notice")
    expect(notice).to_be_hidden()

    # The service does not answer the restore (the network failed): no new session, a retry.
    page.route(GET_HISTORY, lambda route: route.abort("internetdisconnected"))
    page.reload()
    banner = page.get_by_test_id("error-banner")
    expect(banner).to_have_attribute("data-code", "network_error")
    expect(page.get_by_test_id("error-retry")).to_be_visible()
    expect(page.get_by_test_id("session-id")).to_have_text(first)
    page.unroute(GET_HISTORY)
    page.get_by_test_id("error-retry").click()
    expect(page.get_by_test_id("status")).to_contain_text("Session restored")
    expect(page.get_by_test_id("session-id")).to_have_text(first)
    assert created == []

    # The session is gone (here: the page kept the id of one the service never had).
    lost = "0" * 32
    page.evaluate(
        """([uid, sid]) => sessionStorage.setItem("chat-memory.session",
                                                    JSON.stringify({uid, sessionId: sid, messageCount: 4}))""",
        [uid, lost],
    )
    page.reload()
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("could not be restored")
    expect(notice).to_contain_text("new session")
    expect(page.get_by_test_id("session-id")).to_have_text(SESSION_ID)
    replacement = page.get_by_test_id("session-id").inner_text()
    assert replacement not in (lost, first)
    expect(page.get_by_test_id("session-status")).to_have_text("active")
    _on_screen(page, notice)
    _shot(page, artifacts_dir, "lost-session", size)
    assert len(created) == 1, created

    # The replacement is kept: the next reload restores it and starts none.
    page.reload()
    expect(page.get_by_test_id("status")).to_contain_text("Session restored")
    expect(page.get_by_test_id("session-id")).to_have_text(replacement)
    expect(notice).to_be_hidden()
    assert len(created) == 1, created


# --------------------------------------------------------------------------------- 7. the icon


@pytest.mark.parametrize("path", ["", "admin"])
def test_every_page_has_its_icon(page: Page, stack, path: str) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status == 404 else None)
    url = stack.page_url() if not path else _admin_url(stack)
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert href, "no icon linked"
    status, kind = page.evaluate(
        "async (href) => { const r = await fetch(href); return [r.status, r.headers.get('content-type')]; }", href
    )
    assert status == 200 and "image/svg+xml" in (kind or ""), (status, kind)
    page.wait_for_load_state("networkidle")
    # The admin page's 403 (this user is no admin) is the service's answer, said on the page.
    assert [e for e in errors if "403" not in e] == [], errors
