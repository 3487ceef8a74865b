"""Tests of sipapp.transaction.timers: the RFC 3261 Table 4 and RFC 6026 timer values."""

from __future__ import annotations

import attrs
import pytest

from sipapp.transaction import Timers


def test_defaults_are_the_rfc_values() -> None:
    """T1 is 500 ms, T2 4 s, T4 5 s and timer C 180 s by default (§17.1.1.1, §16.6)."""
    timers = Timers()
    assert (timers.t1, timers.t2, timers.t4, timers.timer_c) == (0.5, 4.0, 5.0, 180.0)


def test_timeouts_are_64_t1() -> None:
    """Timers B, F, H, L and M are all 64*T1 (32 s with the default T1)."""
    timers = Timers()
    assert [timers.timer_b, timers.timer_f, timers.timer_h, timers.timer_l, timers.timer_m] == [
        32.0
    ] * 5


def test_timeouts_follow_t1() -> None:
    """A smaller T1 shortens every 64*T1 timer in proportion."""
    timers = Timers(t1=0.1)
    assert timers.timer_b == timers.timer_f == timers.timer_h == pytest.approx(6.4)
    assert timers.timer_l == timers.timer_m == timers.timer_j(False) == pytest.approx(6.4)


def test_timer_d_at_least_32_seconds_on_udp() -> None:
    """Timer D is 32 s on UDP even with a small T1 (§17.1.1.2)."""
    assert Timers().timer_d(False) == 32.0
    assert Timers(t1=0.1).timer_d(False) == 32.0


def test_timer_d_grows_with_a_large_t1() -> None:
    """Timer D is never shorter than 64*T1, so it outlives the server's retransmissions."""
    assert Timers(t1=1.0).timer_d(False) == 64.0


def test_timer_d_zero_on_reliable() -> None:
    """Timer D is 0 on TCP/TLS."""
    assert Timers().timer_d(True) == 0.0


def test_timer_i_t4_on_udp_zero_on_reliable() -> None:
    """Timer I is T4 on UDP and 0 on TCP/TLS (§17.2.1)."""
    timers = Timers(t4=7.0)
    assert (timers.timer_i(False), timers.timer_i(True)) == (7.0, 0.0)


def test_timer_j_64_t1_on_udp_zero_on_reliable() -> None:
    """Timer J is 64*T1 on UDP and 0 on TCP/TLS (§17.2.2)."""
    timers = Timers()
    assert (timers.timer_j(False), timers.timer_j(True)) == (32.0, 0.0)


def test_timer_k_t4_on_udp_zero_on_reliable() -> None:
    """Timer K is T4 on UDP and 0 on TCP/TLS (§17.1.2.2)."""
    timers = Timers(t4=7.0)
    assert (timers.timer_k(False), timers.timer_k(True)) == (7.0, 0.0)


def test_timers_are_frozen() -> None:
    """Timers is an immutable value: a change is attrs.evolve."""
    timers = Timers()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        timers.t1 = 1.0  # type: ignore[misc]
    assert attrs.evolve(timers, t1=1.0).timer_b == 64.0
