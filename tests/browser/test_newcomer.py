"""The newcomer's whole first hour in one walk (issue 20's "done means"), in a real Chromium
against the real stack, at a laptop's size (1280x800) and a phone's (375x740):

1. open the console (Hosting) and sign in anonymously (the Auth emulator);
2. chat past a rolling summary (SUMMARY_INTERVAL: 5 messages), each question carrying a canary;
3. end the session (the report counts ended sessions), and see the trigger count it;
4. open the admin page in a second tab: "Not an admin", with the command to run;
5. run that very command, parsed from the page (`make grant ROLE=admin UID=...`), from the
   checkout's root with a newcomer's environment (no FIREBASE_AUTH_EMULATOR_HOST: the script
   finds the stack's Auth emulator itself, through CM_DEV_CONFIG);
6. reload the admin page: it must pick up the new claim without a sign-out; read the report
   (today's row counts this session and its questions, against a baseline read before the end)
   and open the user's own session in it;
7. back in the console, download the user's data (Chromium's own download) and find every
   canary in the file;
8. erase it ("Delete my data", typing DELETE) and check, with the same user's ID token, that
   the session answers 404 and a fresh export holds no canary.

Each step leaves a screenshot of what the user sees (the viewport) in
.build/screenshots/newcomer-<width>x<height>/NN-step.png, and asserts that what the step
needs is on screen and the page does not scroll sideways.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, Request, expect

from tests.browser.conftest import REPO
from tests.browser.test_admin import _admin_url, _table
from tests.browser.test_console import SESSION_ID, SUMMARY_INTERVAL, _open_and_sign_in, _send
from tests.browser.test_first_hour import _on_screen
from tests.clients import Api, User

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SIZES = {"1280x800": (1280, 800), "375x740": (375, 740)}
SHOTS = REPO / ".build" / "screenshots"
DELETE_MY_DATA = re.compile(r".*/delete_my_data(\?.*)?$")
GRANT = re.compile(r"^make grant ROLE=admin UID=(\S+)$")
# Three turns, six messages: past the first summary (at 5).
QUESTIONS = [
    "How do I reset my password? My note: {canary}-1",
    "Which payment methods do you accept? My note: {canary}-2",
    "How long does delivery take to Germany? My note: {canary}-3",
]
# What a newcomer's shell does not hold: the test stack's own pointers at its emulators.
NOT_IN_A_NEWCOMERS_SHELL = ("FIREBASE_AUTH_EMULATOR_HOST", "GCLOUD_PROJECT", "GOOGLE_CLOUD_PROJECT", "GCP_PROJECT")


class Shots:
    """Numbered screenshots of one walk, in a directory named by the size."""

    def __init__(self, size: str) -> None:
        self.dir = SHOTS / f"newcomer-{size}"
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()
        self.n = 0

    def take(self, page: Page, step: str) -> Path:
        self.n += 1
        path = self.dir / f"{self.n:02d}-{step}.png"
        page.screenshot(path=str(path))
        return path


def _fits(page: Page, *on_screen: Locator) -> None:
    """No sideways scrolling, and each locator scrolled to and wholly on screen, uncovered."""
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px"
    for loc in on_screen:
        loc.scroll_into_view_if_needed()
        _on_screen(page, loc)


def _lines_on_screen(page: Page, locator: Locator) -> None:
    """Text that may wrap (an inline element over several lines): each of its lines wholly
    inside the viewport, once scrolled to."""
    locator.scroll_into_view_if_needed()
    vp = page.viewport_size
    assert vp
    rects = locator.evaluate("(n) => [...n.getClientRects()].map((r) => [r.left, r.top, r.right, r.bottom])")
    assert rects, f"{locator} has no box (hidden?)"
    for left, top, right, bottom in rects:
        assert left >= -0.5 and right <= vp["width"] + 0.5 and top >= -0.5 and bottom <= vp["height"] + 0.5, (
            rects,
            vp,
        )


def _today_row(api: Api, reader: User, today: str) -> tuple[int, int]:
    """Today's (sessions, queries) in the admin report, read over HTTP by an admin."""
    got = api.get("admin_report", {"from": today, "to": today}, reader)
    assert got.status == 200, got.text
    days = [d for d in got.body["days"] if d["date"] == today]
    return (days[0]["sessions"], days[0]["queries"]) if days else (0, 0)


def _newcomer_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_IN_A_NEWCOMERS_SHELL}
    # The test stack names its config (as make dev's is firebase.json): make grant finds the
    # Auth emulator there.
    assert env.get("CM_DEV_CONFIG") or (REPO / "firebase.json").exists()
    return env


@pytest.fixture(params=list(SIZES))
def size(request: pytest.FixtureRequest, page: Page) -> str:
    width, height = SIZES[request.param]
    page.set_viewport_size({"width": width, "height": height})
    return request.param


def test_the_newcomers_first_hour(page: Page, stack, api: Api, size: str) -> None:  # noqa: PLR0915 (one walk)
    shots = Shots(size)
    canary = f"canary-{uuid.uuid4().hex[:12]}"
    typed = [q.format(canary=canary) for q in QUESTIONS]
    today = time.strftime("%Y-%m-%d", time.gmtime())

    # 1. Sign in.
    uid, session_id = _open_and_sign_in(page, stack.page_url())
    expect(page.get_by_test_id("health")).to_contain_text("ok")
    _fits(page, page.get_by_test_id("auth-status"), page.get_by_test_id("composer-input"))
    shots.take(page, "signed-in")

    # 2. Chat past a summary.
    summary = page.get_by_test_id("summary")
    for turn, text in enumerate(typed, start=1):
        _send(page, text, 2 * turn)
        if 2 * turn < SUMMARY_INTERVAL:
            expect(page.get_by_test_id("summary-empty")).to_be_visible()
            expect(summary).to_be_hidden()
        _fits(page, page.get_by_test_id("composer-input"), page.get_by_test_id("send-button"))
    expect(summary).to_be_visible()
    assert summary.inner_text().strip(), "the rolling summary is empty"
    expect(page.get_by_test_id("summary-meta")).to_contain_text(f"Covers {SUMMARY_INTERVAL} messages")
    messages = page.get_by_test_id("transcript").get_by_test_id("message")
    expect(messages).to_have_count(2 * len(typed))
    shots.take(page, "chatted")
    _fits(page, summary)
    shots.take(page, "summary")

    # 3. End the session: the report counts ended sessions (the trigger writes them).
    reader = api.new_user(backend=False)
    api.set_claims(reader.uid, {"admin": True})
    reader.token = api.refreshed_token(reader.refresh_token)
    sessions_before, queries_before = _today_row(api, reader, today)
    end = page.get_by_test_id("end-session-button")
    _fits(page, end)
    end.click()
    expect(page.get_by_test_id("session-status")).to_have_text("ended")
    expect(page.get_by_test_id("end-panel")).to_be_visible()
    expect(page.get_by_test_id("end-message-count")).to_have_text(str(2 * len(typed)))
    expect(page.get_by_test_id("user-stats-status")).to_have_text("counted.", timeout=30_000)
    expect(page.get_by_test_id("stats-queries")).to_have_text(str(len(typed)))
    _fits(page, page.get_by_test_id("user-stats"))
    shots.take(page, "session-ended")

    # 4. The admin page, in a second tab of the same browser: the same user, not an admin.
    admin = page.context.new_page()
    admin.set_viewport_size(page.viewport_size or {"width": 0, "height": 0})
    admin.goto(_admin_url(stack))
    expect(admin.get_by_test_id("auth-status")).to_contain_text(uid)
    panel = admin.get_by_test_id("not-admin")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("Not an admin")
    expect(admin.get_by_test_id("error-banner")).to_be_hidden()
    command = panel.locator("code").filter(has_text="make grant").inner_text().strip()
    grant = GRANT.match(command)
    assert grant, f"the page prints no grant command: {command!r}"
    assert grant.group(1) == uid, (command, uid)
    _fits(admin, admin.get_by_test_id("not-admin-uid"), admin.get_by_test_id("check-again"))
    _lines_on_screen(admin, panel.locator("code").filter(has_text="make grant"))
    shots.take(admin, "not-an-admin")

    # 5. Run it, as pasted into a shell at the checkout's root.
    ran = subprocess.run(
        shlex.split(command), cwd=REPO, env=_newcomer_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.returncode == 0, f"`{command}` failed ({ran.returncode}):\n{ran.stdout}\n{ran.stderr}"
    assert "using the local Auth emulator" in ran.stdout, ran.stdout  # found it as a newcomer's shell would
    assert f"{uid}: admin granted" in ran.stdout, ran.stdout

    # 6. Reload: the page fetches a token with the new claim (no sign-out), and reads the report.
    admin.reload()
    expect(admin.get_by_test_id("admin-main")).to_be_visible()
    expect(panel).to_be_hidden()
    expect(admin.get_by_test_id("auth-status")).to_contain_text(uid)
    expect(admin.get_by_test_id("status")).to_contain_text("Report for")
    expect(admin.get_by_test_id("error-banner")).to_be_hidden()
    rows = [r for r in _table(admin.get_by_test_id("activity-rows")) if r[0] == today]
    assert rows, "no row for today in the report"
    assert (int(rows[0][1]), int(rows[0][2])) == (sessions_before + 1, queries_before + len(typed)), (
        rows[0],
        sessions_before,
        queries_before,
    )
    assert int(admin.get_by_test_id("total-sessions").inner_text()) >= sessions_before + 1
    _fits(admin, admin.get_by_test_id("totals"))
    shots.take(admin, "admin-report")

    box = admin.get_by_test_id("session-input")
    box.scroll_into_view_if_needed()
    box.fill(session_id)
    box.press("Enter")
    expect(admin.get_by_test_id("session-detail")).to_be_visible()
    expect(admin.get_by_test_id("session-detail-id")).to_have_text(session_id)
    expect(admin.get_by_test_id("session-fields").locator('dd[data-field="status"]')).to_have_text("ended")
    analytics = _table(admin.get_by_test_id("session-analytics"))
    assert [r[1] for r in analytics] == typed, analytics
    shown = admin.get_by_test_id("session-messages").inner_text()
    assert all(f"{canary}-{i}" in shown for i in range(1, len(typed) + 1)), shown
    _fits(admin, admin.get_by_test_id("session-detail-id"))
    shots.take(admin, "admin-session")

    # 7. Back in the console: download the user's data, a real download.
    page.bring_to_front()
    download_button = page.get_by_test_id("download-data-button")
    _fits(page, download_button, page.get_by_test_id("delete-data-button"))
    expect(download_button).to_be_enabled()
    with page.expect_download() as info:
        download_button.click()
    download = info.value
    assert download.failure() is None, download.failure()
    saved = shots.dir / download.suggested_filename
    download.save_as(saved)
    text = saved.read_text(encoding="utf-8")
    assert uid in text
    assert session_id in text
    for i in range(1, len(typed) + 1):
        assert f"{canary}-{i}" in text, f"{canary}-{i} is not in the downloaded file"
    expect(page.get_by_test_id("status")).to_have_text(f"Downloaded {download.suggested_filename}: 1 session.")
    expect(page.get_by_test_id("error-banner")).to_be_hidden()
    _fits(page, page.get_by_test_id("status"))
    shots.take(page, "downloaded")

    # 8. Erase it, typing DELETE.
    page.get_by_test_id("delete-data-button").click()
    word = page.get_by_test_id("erase-word")
    expect(word).to_be_focused()
    word.fill("DELETE")
    submit = page.get_by_test_id("erase-submit")
    expect(submit).to_be_enabled()
    _fits(page, word, submit, page.get_by_test_id("erase-cancel"))
    shots.take(page, "erase-confirm")
    with page.expect_request(lambda r: bool(DELETE_MY_DATA.match(r.url)) and r.method == "POST") as sent:
        submit.click()
    receipt = page.get_by_test_id("erase-receipt")
    expect(receipt).to_be_visible()
    expect(page.get_by_test_id("error-banner")).to_be_hidden()
    expect(page.get_by_test_id("status")).to_contain_text("Erased:")
    assert int(page.get_by_test_id("erased-sessions").inner_text()) >= 1
    assert int(page.get_by_test_id("erased-messages").inner_text()) >= 2 * len(typed)
    expect(page.get_by_test_id("session-id")).to_have_text("none yet")
    expect(messages).to_have_count(0)
    _fits(page, page.get_by_test_id("receipt-sentence"))
    shots.take(page, "erased")

    # Gone, as the same user sees it through the API.
    request: Request = sent.value
    authorization = request.all_headers().get("authorization", "")
    assert authorization.startswith("Bearer "), "the page sent no ID token"
    me = User(uid, authorization.removeprefix("Bearer "))
    history = api.get("get_history", {"session_id": session_id}, me)
    assert history.status == 404, history.text
    exported = api.get("export_my_data", {}, me)
    assert exported.status == 200, exported.text
    assert canary not in exported.text, exported.text
    assert session_id not in exported.text, exported.text
    assert SESSION_ID.match(session_id)
