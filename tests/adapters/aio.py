"""Coroutines from the synchronous tests, and the examples as processes: what the adapter tests
(ADK, OpenAI Agents, MCP, LangChain) share."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]


def on_own_loop(coro: Coroutine[Any, Any, T]) -> T:
    """``coro`` run to its end on an event loop of its own thread: in the same pytest process the
    browser tier's Playwright (sync API) keeps a loop running on this one, where
    ``asyncio.run`` refuses to start another."""
    out: dict[str, Any] = {}

    def main() -> None:
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            out["error"] = exc

    t = threading.Thread(target=main)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def run_example(name: str, base_url: str, token: str, *args: str, **env: str) -> str:
    """``examples/<name>`` against the stack, as a newcomer runs it; its standard output."""
    full = os.environ | {
        "PYTHONPATH": str(ROOT / "clients" / "python" / "src"),
        "CM_FUNCTIONS_URL": base_url,
        "CM_TOKEN": token,
        **env,
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
        check=True,
    ).stdout


def in_second_process(code: str, *args: str) -> Any:
    """``code`` (Python printing one JSON value) in a process of its own with the client package
    importable, ``args`` as its ``sys.argv[1:]``: what another instance of an app reads."""
    import json

    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT / "clients" / "python" / "src")},
        timeout=60,
        check=True,
    ).stdout
    return json.loads(out)
