"""ADK's own session-service tests (test_session_service.py, vendored) run on two services:
``in_memory``, ADK 2.13.0's own InMemorySessionService (the reference: the vendored tests hold
for the ADK installed), and ``chat_memory``, chat_memory_client.adk.ChatMemorySessionService
on the emulated functions (an AsyncChatMemoryClient holding a backend identity). Each
chat_memory test has a namespace of its own (the product's app names and user ids are
prefixed with it), as each ADK test has a fresh in-memory service: the emulated stack is one
for the whole run. A test the product cannot pass is skipped with the reason (SKIPPED).

ADK's tests use pytest-asyncio's ``asyncio`` marker; pytest-asyncio is not a dependency here,
so ``pytest_pyfunc_call`` runs a coroutine test in a fresh event loop of its own thread, and
closes the test's client in that loop.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from chat_memory_client import AsyncChatMemoryClient
from chat_memory_client.adk import ChatMemorySessionService
from google.adk.sessions.base_session_service import BaseSessionService
from google.adk.sessions.in_memory_session_service import InMemorySessionService

from tests.adapters.aio import on_own_loop
from tests.clients import Api

SKIPPED = {
    "test_list_sessions_all_users": (
        "the product lists one user's sessions only: a backend acts for one named user per call "
        "(user_id), and no function lists every user's sessions of an app; "
        "list_sessions(user_id=None) raises NotImplementedError"
    ),
}

_OPEN: list[AsyncChatMemoryClient] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "asyncio: a coroutine test (ADK's tests; run by pytest_pyfunc_call here)")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}

    async def run() -> None:
        try:
            await pyfuncitem.obj(**args)
        finally:
            while _OPEN:
                await _OPEN.pop().aclose()

    on_own_loop(run())  # not asyncio.run: the browser tier's Playwright holds this thread's loop
    return True


@pytest.fixture(params=["in_memory", "chat_memory"])
def session_service(request: pytest.FixtureRequest) -> Iterator[BaseSessionService]:
    if request.param == "in_memory":
        yield InMemorySessionService()
        return
    reason = SKIPPED.get(request.node.originalname)
    if reason is not None:
        pytest.skip(reason)
    api: Api = request.getfixturevalue("api")
    backend = api.new_user(backend=True)
    client = AsyncChatMemoryClient(api.base_url, backend.token)
    _OPEN.append(client)
    yield ChatMemorySessionService(client=client, namespace=f"adk{uuid.uuid4().hex[:10]}.")


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """Every vendored test runs on both services: none is collected without the fixture."""
    for item in items:
        if "adk_contract" in str(item.fspath):
            assert "session_service" in item.fixturenames, item.nodeid
