"""The admin page in a real browser, against the real stack.

Given sessions that end users had with the assistant (over HTTP, with Auth-emulator tokens),
some of whose answers were weak (questions the shop's FAQ cannot answer), ended and counted by
the emulated trigger: when the page's own anonymous user is no admin, it says so; once an
operator grants that user the admin role (scripts/grant_role.py), the page fills its charts
from those sessions, pages through the weak answers with the cursor (forward and back),
downloads a page as CSV, and opens one session in full. Nothing is mocked.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.test_console import _accessibility_violations
from tests.clients import Api, User

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
PAGE_SIZE = 2  # small, so the weak answers below fill three pages
TRIGGER_WAIT_S = 40
# Two sessions' questions: most of them the shop's FAQ does not cover (weak answers).
ANSWERED = {"How do I reset my password?", "Which payment methods do you accept?"}
SESSIONS = [
    [
        "what is the best pizza recipe in naples",
        "How do I reset my password?",
        "who painted the ceiling of the sistine chapel",
        "how many moons does jupiter have",
    ],
    [
        "which river flows through budapest",
        "Which payment methods do you accept?",
        "what is the boiling point of mercury in kelvin",
    ],
]
WEAK_BELOW = 0.5  # LOW_CONFIDENCE_THRESHOLD's default
PHONE, DESKTOP = 375, 1280


def _grant_admin(stack, uid: str) -> None:
    env = {
        **os.environ,
        "FIREBASE_AUTH_EMULATOR_HOST": stack.auth_url.removeprefix("http://"),
        "GCLOUD_PROJECT": stack.project_id,
    }
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "grant_role.py"), "admin", uid],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr


def _admin_user(api: Api, stack) -> User:
    user = api.new_user(backend=False)
    _grant_admin(stack, user.uid)
    user.token = api.refreshed_token(user.refresh_token)
    return user


@pytest.fixture(scope="module")
def weak_answers(api: Api, stack) -> dict[str, Any]:
    """The end users' sessions, ended; returns them with their weak answers, once the
    trigger has counted them (read back through the admin functions)."""
    weak: set[tuple[str, int]] = set()
    sids: list[str] = []
    for n, questions in enumerate(SESSIONS):
        owner = api.new_user(backend=False)
        sid = api.new_session(owner)
        sids.append(sid)
        for i, q in enumerate(questions):
            r = api.chat(owner, sid, q, cmid=f"s{n}-q{i}")
            assert r.status == 201, r.text
            if q not in ANSWERED:
                assert r.body["answer"]["metadata"]["confidence"] < WEAK_BELOW, (q, r.body)
                weak.add((sid, r.body["answer"]["seq"]))
        assert api.end(owner, sid).status == 200

    reader = _admin_user(api, stack)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    deadline = time.monotonic() + TRIGGER_WAIT_S
    while True:
        got = api.get("admin_low_confidence", {"from": today, "to": today, "limit": 200}, reader)
        assert got.status == 200, got.text
        listed = {(it["session_id"], it["seq"]) for it in got.body["items"]}
        if weak <= listed:
            break
        assert time.monotonic() < deadline, f"the trigger did not list the weak answers: {weak - listed}"
        time.sleep(0.5)
    return {"sids": sids, "weak": weak, "today": today}


def _admin_url(stack) -> str:
    """`/admin` once Hosting routes it to the admin page; `/admin.html` (the file) until then."""
    base = stack.page_url().replace("?", "admin?", 1)
    try:
        with urllib.request.urlopen(base.split("?")[0], timeout=10) as r:  # noqa: S310 (loopback)
            if b'data-page="admin"' in r.read():
                return base
    except urllib.error.HTTPError:
        pass
    return base.replace("admin?", "admin.html?", 1)


def _open(page: Page, stack, query: str = "") -> str:
    page.goto(_admin_url(stack) + query)
    expect(page.get_by_test_id("auth-status")).to_contain_text("anonymous")
    uid = page.get_by_test_id("auth-status").get_attribute("data-uid")
    assert uid, "the page did not sign in"
    return uid


def _expect_not_admin(page: Page, uid: str) -> None:
    expect(page.get_by_test_id("not-admin")).to_be_visible()
    expect(page.get_by_test_id("not-admin")).to_contain_text("Not an admin")
    expect(page.get_by_test_id("not-admin-uid")).to_have_text(uid)
    expect(page.get_by_test_id("admin-main")).to_be_hidden()
    expect(page.get_by_test_id("error-banner")).to_be_hidden()


def _rows(page: Page) -> list[tuple[str, int]]:
    rows = page.get_by_test_id("low-row")
    return [(r.get_attribute("data-session-id") or "", int(r.get_attribute("data-seq") or -1)) for r in rows.all()]


def _points(page: Page, chart: str) -> int:
    return int(page.get_by_test_id(chart).get_attribute("data-points") or 0)


def _table(tbody: Locator) -> list[list[str]]:
    return [[c.strip() for c in r.locator("td").all_text_contents()] for r in tbody.locator("tr").all()]


def _check_the_report(page: Page, data: dict[str, Any]) -> None:
    expect(page.get_by_test_id("admin-main")).to_be_visible()
    expect(page.get_by_test_id("not-admin")).to_be_hidden()
    expect(page.get_by_test_id("status")).to_contain_text("Report for")
    questions = sum(len(q) for q in SESSIONS)
    assert int(page.get_by_test_id("total-sessions").inner_text()) >= len(SESSIONS)
    assert int(page.get_by_test_id("total-queries").inner_text()) >= questions
    assert int(page.get_by_test_id("total-low").inner_text()) >= len(data["weak"])
    expect(page.get_by_test_id("total-avg")).to_have_text(re.compile(r"^\d{1,3}%$"))
    # Each chart drew the figures of the sessions above; its table holds the same numbers.
    today = [r for r in _table(page.get_by_test_id("activity-rows")) if r[0] == data["today"]]
    assert today and int(today[0][1]) >= len(SESSIONS) and int(today[0][2]) >= questions, today
    assert _points(page, "chart-activity") >= 1
    assert _points(page, "chart-confidence") >= 1
    assert _points(page, "chart-histogram") >= questions
    assert sum(int(r[1]) for r in _table(page.get_by_test_id("histogram-rows"))) == _points(page, "chart-histogram")
    assert _points(page, "chart-kb") >= 1 and _table(page.get_by_test_id("kb-rows"))
    assert _points(page, "chart-end-reasons") >= 1
    assert sum(int(r[1]) for r in _table(page.get_by_test_id("end-reason-rows"))) >= len(SESSIONS)
    drawn = page.evaluate(
        """() => [...document.querySelectorAll("figure.chart canvas")]
                  .filter(c => c.offsetParent !== null).map(c => [c.width, c.height])"""
    )
    assert len(drawn) == 5 and all(w > 0 and h > 0 for w, h in drawn), drawn


def _page_through(page: Page, data: dict[str, Any]) -> list[list[tuple[str, int]]]:
    """Next until the last page, then Previous: each page as it was, no answer twice."""
    pages = [_rows(page)]
    expect(page.get_by_test_id("low-page")).to_contain_text("page 1,")
    expect(page.get_by_test_id("page-previous")).to_be_disabled()
    while page.get_by_test_id("page-next").is_enabled():
        before = len(pages)
        page.get_by_test_id("page-next").click()
        expect(page.get_by_test_id("status")).to_have_text(re.compile(rf"^Page {before + 1}\.$|last page"))
        if "last page" in page.get_by_test_id("status").inner_text():
            break
        expect(page.get_by_test_id("low-page")).to_contain_text(f"page {before + 1},")
        pages.append(_rows(page))
    seen = [row for p in pages for row in p]
    assert len(seen) == len(set(seen)), pages
    assert data["weak"] <= set(seen), pages
    assert all(len(p) == PAGE_SIZE for p in pages[:-1]) and 1 <= len(pages[-1]) <= PAGE_SIZE, pages
    assert len(pages) >= 3, pages
    expect(page.get_by_test_id("page-next")).to_be_disabled()

    page.get_by_test_id("page-previous").click()
    expect(page.get_by_test_id("low-page")).to_contain_text(f"page {len(pages) - 1},")
    assert _rows(page) == pages[-2]
    return pages


def _download_csv(page: Page, rows: list[tuple[str, int]], artifacts_dir: Path) -> None:
    with page.expect_download() as d:
        page.get_by_test_id("csv-download").click()
    download = d.value
    day = r"\d{4}-\d{2}-\d{2}"
    assert re.fullmatch(rf"low-confidence_{day}_{day}_page-\d+\.csv", download.suggested_filename)
    target = artifacts_dir / "admin-low-confidence.csv"
    download.save_as(target)
    with target.open(newline="", encoding="utf-8") as f:
        got = [(r["session_id"], int(r["seq"])) for r in csv.DictReader(f)]
    assert got == rows


def _drill_down(page: Page, sid: str, questions: list[str]) -> None:
    page.get_by_label(f"open session {sid}").first.click()
    detail = page.get_by_test_id("session-detail")
    expect(detail).to_be_visible()
    expect(page.get_by_test_id("session-detail-id")).to_have_text(sid)
    expect(page.get_by_test_id("session-input")).to_have_value(sid)
    expect(page.get_by_test_id("session-fields").locator('dd[data-field="status"]')).to_have_text("ended")
    analytics = _table(page.get_by_test_id("session-analytics"))
    assert [r[1] for r in analytics] == questions, analytics
    assert all(re.fullmatch(r"\d{1,3}%", r[2]) for r in analytics), analytics
    messages = page.get_by_test_id("session-messages").locator("li")
    expect(messages.and_(page.locator('[data-role="user"]')).filter(has_text=questions[-1])).to_have_count(1)
    expect(messages.last).to_have_attribute("data-role", "assistant")


def _readable_at(page: Page, width: int, shot: Path) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(300)  # the charts follow their boxes' new size
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px at {width} px"
    assert _accessibility_violations(page) == []
    page.screenshot(path=str(shot), full_page=True)


def test_an_admin_sees_the_report_pages_the_weak_answers_downloads_and_drills_down(
    page: Page, stack, api: Api, weak_answers: dict[str, Any], artifacts_dir: Path
) -> None:
    page.set_viewport_size({"width": DESKTOP, "height": 900})
    uid = _open(page, stack, f"&limit={PAGE_SIZE}")
    _expect_not_admin(page, uid)

    _grant_admin(stack, uid)
    page.get_by_test_id("check-again").click()  # the page fetches a token with the new role
    _check_the_report(page, weak_answers)

    pages = _page_through(page, weak_answers)
    _download_csv(page, pages[-2], artifacts_dir)
    sid = pages[-2][0][0]
    _drill_down(page, sid, SESSIONS[weak_answers["sids"].index(sid)])

    _readable_at(page, DESKTOP, artifacts_dir / "admin.png")
    _readable_at(page, PHONE, artifacts_dir / "admin-phone.png")


def test_a_user_without_the_admin_role_sees_not_an_admin(page: Page, stack, artifacts_dir: Path) -> None:
    uid = _open(page, stack)
    _expect_not_admin(page, uid)
    # Asking again changes nothing while the role is not granted.
    page.get_by_test_id("check-again").click()
    _expect_not_admin(page, uid)
    assert page.locator("body").get_attribute("data-role") == "not-admin"
    assert _accessibility_violations(page) == []
    page.screenshot(path=str(artifacts_dir / "admin-not-admin.png"), full_page=True)
