"""What Hosting sends with the pages (issue 24, item 15): a Content-Security-Policy that
allows only the page's own scripts and the APIs it calls, no framing (the erase dialog could
otherwise be framed and clicked through), no MIME sniffing; and the pages still work under it."""

from __future__ import annotations

import urllib.request

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_console import _open_and_sign_in, _send

PAGES = ("", "admin")


def _headers(url: str) -> dict[str, str]:
    with urllib.request.urlopen(url, timeout=20) as r:
        return {k.lower(): v for k, v in r.headers.items()}


@pytest.mark.parametrize("path", PAGES)
def test_the_pages_come_with_a_policy_that_forbids_framing_and_sniffing(stack, path: str) -> None:
    h = _headers(stack.web_url + path)
    csp = h.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "object-src 'none'" in csp, h
    assert h.get("x-content-type-options") == "nosniff"
    assert h.get("x-frame-options") == "DENY"


def test_another_site_cannot_frame_the_console(page: Page, stack) -> None:
    # set_content waits for the load event, the frame's included.
    page.set_content(f'<iframe id="f" src="{stack.page_url()}" width="800" height="600"></iframe>')
    # Blocked by frame-ancestors: the frame holds Chromium's error page, never the console.
    assert page.frames[1].url.startswith("chrome-error://"), page.frames[1].url
    expect(page.frame_locator("#f").locator("[data-testid=composer-input]")).to_have_count(0)


def test_the_console_and_the_admin_page_break_no_rule_of_the_policy(page: Page, stack) -> None:
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    _open_and_sign_in(page, stack.page_url())
    _send(page, "How long does shipping take?", 2)
    page.goto(f"{stack.web_url}admin?auth_emulator={stack.auth_url}")
    page.wait_for_load_state("networkidle")
    assert violations == []
