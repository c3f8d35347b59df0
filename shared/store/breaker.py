"""A small per-instance circuit breaker.

While Redis is down every request would otherwise pay a connect timeout; with the
breaker open an instance pays at most one timeout per cool-down period and goes
straight to the next layer in between.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(self, cooldown_s: float, clock=time.monotonic) -> None:
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._probing = False
        self._probe_started = 0.0
        self.failures = 0
        self.opened_count = 0
        self.recoveries = 0  # open -> closed transitions: "the backend came back"
        self.recovered_at: float | None = None  # when it came back (this clock), best known
        self._listeners: list[Callable[[float], None]] = []
        # A connection error was forgiven once (maybe a dead pooled connection): the next
        # failure before a success is a real one.
        self.suspect = False
        self.last_error: str | None = None

    @property
    def is_open(self) -> bool:
        return self._clock() < self._open_until

    def allow(self) -> bool:
        """True if a call may go to the backend now.

        After the cool-down one caller at a time is let through (half-open) as a probe;
        concurrent callers keep skipping until the probe answers.
        """
        with self._lock:
            if self._open_until == 0.0:
                return True
            now = self._clock()
            if now < self._open_until:
                return False
            # A probe that never reported (its caller died or lost the result) must not
            # wedge the breaker: after one more cool-down, another caller may probe.
            if self._probing and now < self._probe_started + self.cooldown_s:
                return False
            self._probing = True
            self._probe_started = now
            return True

    def on_recovery(self, listener: Callable[[float], None]) -> None:
        """Call ``listener(recovered_at)`` whenever the backend may have come back."""
        self._listeners.append(listener)

    def _recovered(self, at: float) -> None:
        """Under the lock: count it; the listeners are called after it is released."""
        self.recoveries += 1
        self.recovered_at = at

    def _tell(self, at: float | None) -> None:
        if at is not None:
            for listener in list(self._listeners):
                listener(at)

    def record_success(self) -> None:
        came_back = None
        with self._lock:
            if self._open_until != 0.0:
                came_back = self._clock()
                self._recovered(came_back)
            self._open_until = 0.0
            self.suspect = False
            self._probing = False
            self.failures = 0
        self._tell(came_back)

    def note_reconnect(self, since_s: float = 0.0) -> None:
        """A pooled connection failed while all was well: the backend may have restarted
        (so it may have been away), or may be going down (the next failure will say).
        ``since_s``: how long ago it came back, when the backend says (its uptime)."""
        with self._lock:
            at = self._clock() - max(0.0, since_s)
            self._recovered(at)
            self.suspect = True
        self._tell(at)

    def note_recovery(self, since_s: float = 0.0) -> None:
        """The backend says it (re)started ``since_s`` ago: it may have been away."""
        with self._lock:
            at = self._clock() - max(0.0, since_s)
            self._recovered(at)
        self._tell(at)

    def record_failure(self, error: BaseException | str | None = None) -> None:
        with self._lock:
            self.failures += 1
            if self._open_until == 0.0 or self._probing:
                self.opened_count += 1
            self._open_until = self._clock() + self.cooldown_s
            self._probing = False
            if error is not None:
                self.last_error = type(error).__name__ if isinstance(error, BaseException) else error

    def state(self) -> str:
        with self._lock:
            if self._open_until == 0.0:
                return "closed"
            return "open" if self._clock() < self._open_until else "half_open"
