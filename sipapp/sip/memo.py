"""Bounded memo tables for values that repeat on every message of a call.

The From, To and Contact of a dialog, its Request-URIs and its peers'
addresses come back in every message; parsing them once is the cheapest
parse. A ``Memo`` holds at most ``limit`` entries and is emptied when full,
so hostile input cannot make it grow.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(Generic[K, V]):
    """A dict of remembered results; look up in ``data``, store with ``remember``."""

    __slots__ = ("data", "limit")

    def __init__(self, limit: int = 8192) -> None:
        self.data: dict[K, V] = {}
        self.limit = limit

    def remember(self, key: K, value: V) -> V:
        """Store ``value`` for ``key`` (emptying the table first when full); return it."""
        data = self.data
        if len(data) >= self.limit:
            data.clear()
        data[key] = value
        return value
