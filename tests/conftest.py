"""Fixtures shared by the unit and the integration tests."""

from .postgres_fixtures import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]
