"""The PostgreSQL fixtures every test module may use (registered in tests/conftest.py): one
throwaway cluster per test session, a database of its own per test. Skipped when no PostgreSQL or
psycopg is installed, unless CI is set (then they fail)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["postgres_server", "postgres_url"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One throwaway PostgreSQL cluster for the session; each test gets a database of its own."""
    try:
        from .servers.postgres import PostgresServer, PostgresUnavailable

        server = PostgresServer()
    except (ImportError, PostgresUnavailable) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is needed on CI: {exc}")
        pytest.skip(str(exc))
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    server = request.getfixturevalue("postgres_server")
    url = server.new_database()
    yield url
    server.drop_database(url)
