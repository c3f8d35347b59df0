"""Fixtures every test tier shares: real redis-servers, the emulator stack, clean state.

``make test`` runs the suite under ``firebase emulators:exec`` (see scripts/test.sh), which
sets FIRESTORE_EMULATOR_HOST and friends; the env names of the stack are in tests/harness.py.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `shared` and `tests` importable however pytest is started
    sys.path.insert(0, str(ROOT))

from tests import clients, harness  # noqa: E402

# Opt-out for quick local runs without the emulators: tests that need Firestore skip
# (instead of failing) when this is "1". Never set by `make test` or CI.
NO_EMULATOR_OPT_OUT = "CM_ALLOW_NO_EMULATOR"


def _reset_singletons() -> None:
    """What the process built (settings, clients, breakers, manager, caches) is forgotten:
    ``shared.instance`` is the one place it lives."""
    from shared import edge

    edge.reset()


@pytest.fixture(autouse=True)
def _clean_env_and_singletons() -> Iterator[None]:
    """Restore os.environ after each test and drop cached settings and clients."""
    saved = dict(os.environ)
    _reset_singletons()
    yield
    os.environ.clear()
    os.environ.update(saved)
    _reset_singletons()


@pytest.fixture
def redis_server() -> Iterator[harness.RedisServer]:
    """A fresh redis-server (no persistence) on a free loopback port, for one test."""
    srv = harness.RedisServer().start()
    yield srv
    srv.cleanup()


@pytest.fixture
def redis_server_persistent(tmp_path: Path) -> Iterator[harness.RedisServer]:
    """A redis-server with AOF (appendfsync always): a kill and restart keep its data."""
    srv = harness.RedisServer(persistent=True, data_dir=tmp_path / "redis").start()
    yield srv
    srv.cleanup()


@pytest.fixture(scope="module")
def redis_server_module() -> Iterator[harness.RedisServer]:
    srv = harness.RedisServer().start()
    yield srv
    srv.cleanup()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[harness.RedisCluster]:
    """A three-master Redis Cluster on loopback (cluster_state:ok)."""
    cluster = harness.RedisCluster().start()
    yield cluster
    cluster.stop()


def _require_firestore() -> str:
    host = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if host:
        return host
    if os.environ.get(NO_EMULATOR_OPT_OUT) == "1":
        pytest.skip(f"no Firestore emulator ({NO_EMULATOR_OPT_OUT}=1)")
    pytest.fail(
        "FIRESTORE_EMULATOR_HOST is not set: run the suite with `make test` (it starts the "
        f"emulators with `firebase emulators:exec`), or set {NO_EMULATOR_OPT_OUT}=1 to skip such tests locally"
    )


@pytest.fixture
def firestore_emulator() -> str:
    """host:port of the Firestore emulator; fails (not skips) when it is not running."""
    return _require_firestore()


def clear_firestore(host: str, project: str = harness.PROJECT_ID) -> None:
    req = urllib.request.Request(
        f"http://{host}/emulator/v1/projects/{project}/databases/(default)/documents", method="DELETE"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback emulator
        resp.read()


@pytest.fixture
def clean_firestore(firestore_emulator: str) -> Iterator[str]:
    """The Firestore emulator, emptied before the test."""
    project = os.environ.get("GCLOUD_PROJECT") or harness.PROJECT_ID
    clear_firestore(firestore_emulator, project)
    yield firestore_emulator


@pytest.fixture(scope="session")
def functions_base_url() -> str:
    """Base URL of the emulated functions, e.g. http://127.0.0.1:5001/demo-chat-memory/us-central1."""
    return harness.functions_base_url()


@pytest.fixture(scope="session")
def auth_emulator_host() -> str:
    host = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST")
    if not host:
        pytest.fail("FIREBASE_AUTH_EMULATOR_HOST is not set: run the suite with `make test`")
    return host


@pytest.fixture
def stack_redis() -> Iterator[harness.RedisServer]:
    """The redis-server behind the emulated functions' REDIS_URL (CM_STACK_REDIS_PORT).

    A test may stop()/kill()/start() it; afterwards it is brought back up (empty, unless
    the stack runs it persistent) so the next test finds Redis running.
    """
    srv = harness.stack_redis()
    if srv is None:
        pytest.fail("CM_STACK_REDIS_PORT is not set: run the suite with `make test` (it starts the stack's Redis)")
    assert srv is not None  # for mypy
    yield srv
    if not srv.is_up():
        srv.start()


# -- clients of the running stack (tests/clients.py), for the e2e and reliability tiers ----------


@pytest.fixture(scope="session")
def api(functions_base_url: str) -> clients.Api:
    """The emulated functions over HTTP, once the first worker answers /health."""
    client = clients.Api(functions_base_url, os.environ.get("FIREBASE_AUTH_EMULATOR_HOST"))
    try:
        client.wait_until_up()
    except TimeoutError as exc:
        pytest.fail(str(exc))
    return client


@pytest.fixture
def new_user(api: clients.Api, auth_emulator_host: str) -> Callable[[], clients.User]:
    """Makes new anonymous users of the Auth emulator (real ID tokens)."""
    return api.new_user


@pytest.fixture
def user(new_user: Callable[[], clients.User]) -> clients.User:
    return new_user()


@pytest.fixture
def firestore(firestore_emulator: str) -> clients.Firestore:
    """The Firestore emulator's REST API, as the admin."""
    return clients.Firestore(firestore_emulator, os.environ.get("GCLOUD_PROJECT") or harness.PROJECT_ID)
