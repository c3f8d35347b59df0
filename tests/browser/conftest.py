"""Fixtures of the browser test: Debian's Chromium driven by Playwright, and the running stack.

The stack (Hosting, Functions, Firestore and Auth emulators, Redis) is started elsewhere
(`make dev`, or `firebase emulators:exec`); these fixtures only find it:

1. explicit addresses: CM_WEB_URL (the page, e.g. the Hosting emulator's
   http://127.0.0.1:5000/), CM_FUNCTIONS_URL (the functions' base,
   http://127.0.0.1:5001/demo-chat-memory/us-central1), FIREBASE_AUTH_EMULATOR_HOST and
   FIRESTORE_EMULATOR_HOST (host:port, as firebase-tools sets them);
2. otherwise the Emulator Hub that `firebase emulators:exec` names in FIREBASE_EMULATOR_HUB,
   whose /emulators lists every running emulator with its host and port.

No browser download: Chromium comes from Debian (`apt-get install -y chromium`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests import harness

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "web"
# The emulator starts one Python worker per function on its first call: allow for cold starts.
TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass(frozen=True)
class Stack:
    web_url: str  # the console as Hosting serves it
    functions_url: str | None  # the functions' own base URL
    auth_url: str  # http://host:port of the Auth emulator
    firestore_host: str | None  # host:port of the Firestore emulator
    project_id: str

    def page_url(self, api: str = "hosting") -> str:
        """The console's URL, pointed at the Auth emulator and, for api="direct", at the
        functions' own URLs (cross-origin, so CORS is exercised) instead of Hosting's /api
        rewrites (same-origin)."""
        sep = "&" if "?" in self.web_url else "?"
        url = f"{self.web_url}{sep}auth_emulator={self.auth_url}"
        if api == "direct":
            if not self.functions_url:
                pytest.fail("the functions' URL is unknown (CM_FUNCTIONS_URL or the Emulator Hub)")
            self._require_cors()
            url += f"&api={self.functions_url}"
        return url

    def _require_cors(self) -> None:
        """Fail clearly when the functions do not allow the page's origin (CORS_ORIGINS)."""
        parts = urllib.parse.urlsplit(self.web_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        req = urllib.request.Request(
            f"{self.functions_url}/create_session",
            method="OPTIONS",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 (loopback)
                allowed = r.headers.get("Access-Control-Allow-Origin")
        except urllib.error.HTTPError as exc:
            allowed = exc.headers.get("Access-Control-Allow-Origin")
        if allowed not in (origin, "*"):
            pytest.fail(
                f"The functions do not allow the page's origin {origin} (preflight answered "
                f"Access-Control-Allow-Origin={allowed!r}): start the emulators with CORS_ORIGINS={origin}"
            )


def _hostport(info: dict) -> str:
    host = info.get("host", "127.0.0.1")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{info['port']}"


def _find_stack() -> Stack:
    project = os.environ.get("GCLOUD_PROJECT") or harness.PROJECT_ID
    web_url = os.environ.get("CM_WEB_URL") or os.environ.get("CHAT_MEMORY_WEB_URL")
    functions_url = os.environ.get("CM_FUNCTIONS_URL") or os.environ.get("CHAT_MEMORY_FUNCTIONS_URL")
    auth = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST")
    firestore = os.environ.get("FIRESTORE_EMULATOR_HOST")
    hub = os.environ.get("FIREBASE_EMULATOR_HUB")
    if hub:
        try:
            emus = harness.hub_emulators(hub)
        except OSError as exc:
            pytest.fail(f"FIREBASE_EMULATOR_HUB={hub} does not answer ({exc}); is the emulator stack running?")
        if not web_url and "hosting" in emus:
            web_url = f"http://{_hostport(emus['hosting'])}/"
        if not functions_url and "functions" in emus:
            functions_url = f"http://{_hostport(emus['functions'])}/{project}/{harness.REGION}"
        auth = auth or (_hostport(emus["auth"]) if "auth" in emus else None)
        firestore = firestore or (_hostport(emus["firestore"]) if "firestore" in emus else None)
    missing = [n for n, v in (("the page (Hosting)", web_url), ("the Auth emulator", auth)) if not v]
    if missing:
        pytest.fail(
            "The browser test needs the running stack, and could not find "
            + " and ".join(missing)
            + ". Run it under `make dev` / `firebase emulators:exec --only functions,firestore,auth,hosting`"
            " (which set FIREBASE_EMULATOR_HUB), or set CM_WEB_URL and FIREBASE_AUTH_EMULATOR_HOST."
        )
    assert web_url and auth  # for mypy: pytest.fail above does not return
    return Stack(web_url, functions_url, f"http://{auth}", firestore, project)


def _ensure_built() -> None:
    """Build web/dist if it is missing or older than its sources (Hosting serves it from disk)."""
    dist = WEB / "dist" / "app.js"
    sources = [*WEB.glob("src/*"), WEB / "build.mjs", WEB / "package-lock.json"]
    newest = max(p.stat().st_mtime for p in sources)
    if dist.exists() and dist.stat().st_mtime >= newest and (WEB / "dist" / "index.html").exists():
        return
    if not (WEB / "node_modules" / ".bin" / "esbuild").exists():
        pytest.fail(
            "web/dist is missing or stale and web/node_modules is not installed: "
            "run `npm --prefix web ci && npm --prefix web run build`"
        )
    npm = shutil.which("npm")
    if not npm:
        pytest.fail("web/dist is missing or stale and npm is not on PATH: run `npm --prefix web run build` first")
    subprocess.run([npm, "--prefix", str(WEB), "run", "build"], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def stack() -> Stack:
    _ensure_built()
    return _find_stack()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    d = Path(os.environ.get("ARTIFACTS_DIR", REPO / "artifacts"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {path}. The browser test drives Debian's chromium package "
            "(no Playwright browser download): install it with `apt-get update && apt-get install -y chromium` "
            "(as root), or set CHROMIUM_PATH to a Chromium/Chrome binary."
        )
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser, artifacts_dir: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    console: list[str] = []
    pg.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    pg.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        name = request.node.name.replace("/", "_")
        pg.screenshot(path=str(artifacts_dir / f"{name}-failure.png"), full_page=True)
        (artifacts_dir / f"{name}-console.log").write_text("\n".join(console) + "\n")
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ARG001 (pytest hook signature)
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep
