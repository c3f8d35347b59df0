"""Failover: Redis, then Firestore, then this instance's memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from shared.errors import StoreError
from shared.store.base import SessionStore

T = TypeVar("T")


def failover(routes: Sequence[tuple[SessionStore, Callable[[], T]]]) -> T:
    """Each route runs if its layer is configured, and a layer that is down (StoreError)
    hands over to the next. The memory route is last and answers (or raises the caller's
    error) itself."""
    for layer, route in routes[:-1]:
        if layer.configured:
            try:
                return route()
            except StoreError:
                continue
    return routes[-1][1]()
