"""A private PostgreSQL server for the job-store tests (the shared fixtures are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One private PostgreSQL server for the session; tests take a fresh database each (``new_database``)."""
    server = PostgresServer().start()
    yield server
    server.stop()
