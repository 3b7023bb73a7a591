"""The element store in PostgreSQL (psycopg 3), for several processes sharing one database
(issue #18; see ``docs/postgres.md``). Same interface as :mod:`..sqlite`: ``ElementStore`` and
``ElementReader`` of :mod:`..element_store`."""

from __future__ import annotations

from .reader import DamagedElement, PostgresElementReader
from .schema import SCHEMA_VERSION, BadStoreDatabase
from .store import PostgresElementStore

__all__ = ["SCHEMA_VERSION", "BadStoreDatabase", "DamagedElement", "PostgresElementReader", "PostgresElementStore"]
