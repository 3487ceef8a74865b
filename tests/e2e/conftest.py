"""Fixtures for the end-to-end tests: the real server on loopback, stopped at teardown.

Every test in ``tests/e2e/`` is marked ``e2e`` here, so ``pytest -m "not e2e"``
runs only the fast unit tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import ServerProcess, StartServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test collected from this directory as ``e2e``."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def sipapp_server(tmp_path: Path) -> Iterator[StartServer]:
    """A factory: ``sipapp_server("--listen", "udp:127.0.0.1:P", ...)`` starts a server.

    By default it waits until the server answers (``wait=False`` to skip,
    e.g. for a server expected to fail at start). Every server still running
    at teardown is stopped with SIGTERM, and the test fails if a server
    logged a traceback: an exception that escaped into the log is a bug even
    when every answer on the wire was right.
    """
    started: list[ServerProcess] = []

    def start(*args: str, wait: bool = True) -> ServerProcess:
        server = ServerProcess(args, tmp_path)
        started.append(server)
        server.start()
        if wait:
            server.wait_ready()
        return server

    yield start
    for server in started:
        if server.returncode is None:
            server.stop()
    for server in started:
        log = server.log_text()
        if "Traceback (most recent call last)" in log:
            pytest.fail(f"the server logged a traceback\n--- server log ---\n{log}", pytrace=False)
