"""Opening the element database: the connection settings, the schema, and refusing a file that is
not ours (never touching it)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from ..errors import StorageError, local_fault

__all__ = ["SCHEMA_VERSION", "BadStoreFile", "connect"]

SCHEMA_VERSION = 1
APPLICATION_ID = 0x46544E4C  # "FTNL": marks the file as a futurnal-actors element store
BUSY_TIMEOUT_MS = 10_000  # a reader or writer waits this long for another's lock before failing
_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")  # the file's own fault, unlike a full disk

_TABLES = """
CREATE TABLE elements (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    mailbox TEXT NOT NULL,
    folder TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    thread_id TEXT,
    sort_date TEXT,
    sender TEXT NOT NULL DEFAULT '',
    deleted INTEGER NOT NULL DEFAULT 0
);
-- The documents apart from the columns searches filter on: those rows stay small, many to a page.
CREATE TABLE documents (
    row INTEGER PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE UNIQUE INDEX elements_by_slot ON elements (mailbox, folder, uidvalidity, uid);
CREATE INDEX elements_by_thread ON elements (thread_id, sort_date);
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    id TEXT
);
CREATE INDEX changes_by_mailbox ON changes (mailbox, seq);
CREATE TABLE consumers (
    name TEXT PRIMARY KEY,
    cursor INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('oldest_served', 0);
CREATE VIRTUAL TABLE search USING fts5 (
    subject, people, body, attachments,
    tokenize = 'unicode61 remove_diacritics 2'
);
-- Merge 16 index segments of a size at a time rather than 4: a fifth less CPU per element written,
-- and searches measured no slower (benchmarks/store.py).
INSERT INTO search (search, rank) VALUES ('automerge', 16);
"""


class BadStoreFile(StorageError):
    """The database file is corrupt, foreign, or from a newer version; it is left as it is."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"element store {path} cannot be used: {detail}; it was left untouched")


def connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """A connection to the store at ``path``, with the schema in place.

    WAL lets readers in other processes read while the one writer commits; ``synchronous=FULL``
    makes each commit durable before it returns (the watermark rule depends on it). A file that is
    not a SQLite database, or one that some other program made, raises :class:`BadStoreFile`.
    """
    if not path.exists():
        if not create:
            raise FileNotFoundError(path)
        with contextlib.suppress(FileExistsError):  # made 0600 first: SQLite would make it 0644 (and its WAL alike)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    if path.exists() and path.stat().st_size and not _has_sqlite_header(path):
        raise BadStoreFile(path, "it is not a SQLite database")
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                 check_same_thread=False)
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _check_or_create(connection, path)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
    except sqlite3.DatabaseError as exc:
        connection.close()
        fault = local_fault(exc, path=path)
        if fault is not None and not getattr(exc, "sqlite_errorname", "").startswith(_DAMAGED):
            raise fault from None  # a full disk, say: nothing is wrong with the file itself
        raise BadStoreFile(path, str(exc)) from None
    except BaseException:
        connection.close()
        raise
    return connection


def _has_sqlite_header(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def _check_or_create(connection: sqlite3.Connection, path: Path) -> None:
    application_id, version = _identity(connection)
    if application_id == APPLICATION_ID and version == SCHEMA_VERSION:
        return
    connection.execute("BEGIN IMMEDIATE")  # two processes creating it at once: one waits, then sees it
    try:
        application_id, version = _identity(connection)
        if application_id == APPLICATION_ID and version == SCHEMA_VERSION:
            pass  # another process created it while this one waited for the lock
        elif application_id == 0 and version == 0:
            if connection.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]:
                raise BadStoreFile(path, "it is a SQLite database made by another program")
            connection.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect on the empty file
            for statement in _TABLES.split(";\n"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif application_id != APPLICATION_ID:
            raise BadStoreFile(path, "it is a SQLite database made by another program")
        elif version > SCHEMA_VERSION:
            raise BadStoreFile(path, f"it has schema version {version}, newer than this version of "
                                     f"futurnal-actors understands ({SCHEMA_VERSION}): upgrade futurnal-actors")
        else:
            raise BadStoreFile(path, f"it has an unknown schema version {version}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _identity(connection: sqlite3.Connection) -> tuple[int, int]:
    application_id = connection.execute("PRAGMA application_id").fetchone()[0]
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    return int(application_id), int(version)
