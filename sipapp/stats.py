"""Counters the server keeps, and their Prometheus exposition.

``Stats`` implements ``IStats``: components are handed one instance and call
``inc``; nothing counts through globals. ``collector()`` adapts them to
``prometheus_client`` so the admin site (or a test) can expose them in the
text format: a name ending in ``_total`` is a counter, any other a gauge.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from zope.interface import implementer

from sipapp.interfaces import IStats

_Key = tuple[str, tuple[tuple[str, str], ...]]


@implementer(IStats)
class Stats:
    """In-process counters keyed by name and labels."""

    def __init__(self) -> None:
        self._counters: dict[_Key, int] = {}

    def inc(self, name: str, amount: int = 1, **labels: str) -> None:
        """Add ``amount`` to counter ``name`` with ``labels``."""
        if labels:
            items = tuple(labels.items())
            key = (name, items if len(items) == 1 else tuple(sorted(items)))
        else:
            key = (name, ())
        counters = self._counters
        counters[key] = counters.get(key, 0) + amount

    def value(self, name: str, **labels: str) -> int:
        """The current value of ``name`` with exactly ``labels`` (0 when never counted)."""
        return self._counters.get((name, tuple(sorted(labels.items()))), 0)

    def total(self, name: str) -> int:
        """The sum of ``name`` over all label values."""
        return sum(v for (n, _), v in self._counters.items() if n == name)

    def snapshot(self) -> dict[_Key, int]:
        """A copy of every counter."""
        return dict(self._counters)

    def collector(self) -> Collector:
        """A ``prometheus_client`` collector over these counters."""
        return _StatsCollector(self)


class _StatsCollector(Collector):
    """Names ending in ``_total`` are counters; any other name is a gauge (it may go down)."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        label_names: dict[str, list[str]] = {}
        for (name, labels), value in sorted(self._stats.snapshot().items()):
            family = families.get(name)
            if family is None:
                label_names[name] = [k for k, _ in labels]
                kind = CounterMetricFamily if name.endswith("_total") else GaugeMetricFamily
                family = families[name] = kind(
                    f"sipapp_{name}", f"sipapp {name}", labels=label_names[name]
                )
            if [k for k, _ in labels] == label_names[name]:
                family.add_metric([v for _, v in labels], value)
        yield from families.values()
