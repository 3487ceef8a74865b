"""Fixtures for the transport tests: counters, a recording handler, a memory reactor."""

from __future__ import annotations

import pytest

from .fakes import FakeStats, RecordingHandler, UdpMemoryReactor


@pytest.fixture
def stats() -> FakeStats:
    """Fresh counters."""
    return FakeStats()


@pytest.fixture
def reactor() -> UdpMemoryReactor:
    """A memory reactor with a clock and UDP."""
    return UdpMemoryReactor()


@pytest.fixture
def handler() -> RecordingHandler:
    """A handler that records what it receives."""
    return RecordingHandler()
