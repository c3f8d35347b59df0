"""End-to-end fixtures on top of the shared ones (tests/conftest.py: ``api``, ``user``,
``new_user`` and ``firestore``, the clients of tests/clients.py): the functions' own Redis
taken away for outages, and in-process access to the same stores.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT = os.environ.get("GCLOUD_PROJECT", "demo-chat-memory")


class RedisOutage:
    """Take the functions' Redis away and bring it back on the same port.

    stop() first asks the server to SAVE a snapshot into its --dir, so start() brings it
    back with its data: an outage (maintenance, a network partition), not a data loss.
    """

    def __init__(self, srv: Any) -> None:
        self.srv = srv

    def stop(self) -> None:
        def cli(*cmd: str) -> list[str]:
            out = subprocess.run(
                ["redis-cli", "-p", str(self.srv.port), *cmd], capture_output=True, text=True, timeout=30, check=True
            ).stdout
            return out.split()

        assert cli("SAVE") == ["OK"]
        # The harness restarts the server with --dir data_dir: put the snapshot there
        # (``dir`` is a protected setting in Redis 7, so it cannot be changed live).
        src = Path(cli("CONFIG", "GET", "dir")[-1]) / cli("CONFIG", "GET", "dbfilename")[-1]
        dst = Path(self.srv.data_dir) / "dump.rdb"
        if src.resolve() != dst.resolve():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        self.srv.stop()
        assert not self.srv.is_up()

    def start(self) -> None:
        self.srv.start()


@pytest.fixture
def redis_outage(stack_redis: Any) -> RedisOutage:
    return RedisOutage(stack_redis)


@pytest.fixture
def core_env(monkeypatch) -> Iterator[None]:
    """In-process access to the same stores as the emulated functions (trigger, sweep)."""
    from shared import edge

    monkeypatch.setenv("GCLOUD_PROJECT", PROJECT)
    monkeypatch.delenv("FIRESTORE_ENABLED", raising=False)
    assert os.environ.get("REDIS_URL"), "REDIS_URL (the functions' Redis) must be set for in-process core calls"
    edge.reset()
    yield
    edge.reset()


def cmid() -> str:
    return uuid.uuid4().hex
