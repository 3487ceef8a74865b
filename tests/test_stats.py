"""Tests for sipapp.stats: counters and their Prometheus exposition."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry
from zope.interface.verify import verifyObject

from sipapp.interfaces import IStats
from sipapp.stats import Stats


def test_provides_istats() -> None:
    """Stats provides IStats."""
    assert verifyObject(IStats, Stats())


def test_inc_and_value_by_labels() -> None:
    """Counters add up per name and exact label set; label order does not matter."""
    stats = Stats()
    stats.inc("sip_sent_total", transport="UDP", kind="request")
    stats.inc("sip_sent_total", 2, kind="request", transport="UDP")
    stats.inc("sip_sent_total", transport="TCP", kind="request")
    stats.inc("plain")
    assert stats.value("sip_sent_total", transport="UDP", kind="request") == 3
    assert stats.value("sip_sent_total", kind="request", transport="TCP") == 1
    assert stats.value("sip_sent_total", transport="UDP") == 0
    assert stats.value("plain") == 1
    assert stats.value("never") == 0
    assert stats.total("sip_sent_total") == 4


def test_snapshot_is_a_copy() -> None:
    """A snapshot does not change when counting goes on."""
    stats = Stats()
    stats.inc("a")
    snapshot = stats.snapshot()
    stats.inc("a")
    assert snapshot == {("a", ()): 1}


def test_prometheus_exposition() -> None:
    """Counters (``_total``) and gauges (the rest) are exposed as sipapp_<name> with labels."""
    stats = Stats()
    stats.inc("sip_requests_total", 5, method="INVITE")
    stats.inc("sip_requests_total", 2, method="BYE")
    stats.inc("sip_handler_errors_total")
    stats.inc("tcp_connections", 2, transport="TCP")
    stats.inc("tcp_connections", -1, transport="TCP")
    registry = CollectorRegistry()
    registry.register(stats.collector())
    text = generate_latest(registry).decode()
    assert 'sipapp_sip_requests_total{method="INVITE"} 5.0' in text
    assert 'sipapp_sip_requests_total{method="BYE"} 2.0' in text
    assert "sipapp_sip_handler_errors_total 1.0" in text
    assert "# TYPE sipapp_sip_requests_total counter" in text
    assert "# TYPE sipapp_tcp_connections gauge" in text
    assert 'sipapp_tcp_connections{transport="TCP"} 1.0' in text
