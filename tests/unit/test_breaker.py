"""The circuit breaker's states and its record of when the backend came back (pure logic)."""

from __future__ import annotations

from shared.store.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_open_half_open_closed_and_when_it_came_back():
    clock = Clock()
    b = CircuitBreaker(cooldown_s=5.0, clock=clock)
    assert b.state() == "closed" and b.recovered_at is None
    b.record_failure(ConnectionError("down"))
    assert b.state() == "open" and not b.allow()
    clock.t += 5.0
    assert b.allow() and not b.allow()  # one probe at a time
    b.record_success()
    assert (b.state(), b.recoveries, b.recovered_at) == ("closed", 1, 105.0)


def test_a_reconnect_dates_the_recovery_by_the_backends_uptime():
    clock = Clock()
    b = CircuitBreaker(cooldown_s=5.0, clock=clock)
    b.note_reconnect(since_s=30.0)
    assert (b.recoveries, b.recovered_at, b.suspect) == (1, 70.0, True)
    b.note_reconnect(since_s=-3.0)  # a negative uptime is not a future recovery
    assert b.recovered_at == 100.0


def test_listeners_hear_each_recovery_once_with_its_time():
    clock = Clock()
    b = CircuitBreaker(cooldown_s=5.0, clock=clock)
    heard: list[float] = []
    b.on_recovery(heard.append)
    b.record_success()  # closed to closed: nothing came back
    b.record_failure("down")
    clock.t += 5.0
    assert b.allow()
    b.record_success()
    b.note_recovery(since_s=2.0)
    assert heard == [105.0, 103.0]
