"""Opening a PostgreSQL element store: the connection, the schema the project creates and
versions (table ``futurnal_schema``), and refusing a database that is newer or not ours."""

from __future__ import annotations

import psycopg

from ..errors import StorageError
from ..store_url import display_store

__all__ = ["SCHEMA_VERSION", "BadStoreDatabase", "connect"]

SCHEMA_VERSION = 2
_CREATE_LOCK = 0x46544E4C  # pg_advisory_xact_lock key: two processes creating the schema at once wait in turn

_TABLES = """
CREATE TABLE futurnal_schema (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    version integer NOT NULL
);
CREATE TABLE elements (
    row bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    mailbox text NOT NULL,
    folder text NOT NULL,
    uidvalidity bigint NOT NULL,
    uid bigint NOT NULL,
    thread_id text,
    sort_date text,
    sender text NOT NULL DEFAULT '',
    deleted boolean NOT NULL DEFAULT false,
    doc text NOT NULL,
    search tsvector
);
CREATE UNIQUE INDEX elements_by_slot ON elements (mailbox, folder, uidvalidity, uid);
CREATE INDEX elements_by_thread ON elements (thread_id, sort_date);
CREATE INDEX elements_search ON elements USING gin (search);
CREATE TABLE changes (
    seq bigint PRIMARY KEY,
    op text NOT NULL,
    mailbox text NOT NULL,
    id text
);
CREATE INDEX changes_by_mailbox ON changes (mailbox, seq);
-- One row: the last number the feed gave out and the cursor below which changes were purged.
-- Every writer updates last_seq as the last step of its transaction, so it holds the row's lock
-- until it commits: numbers are given out in commit order, without gaps (docs/postgres.md).
CREATE TABLE feed (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_seq bigint NOT NULL,
    oldest_served bigint NOT NULL
);
INSERT INTO feed (last_seq, oldest_served) VALUES (0, 0);
CREATE TABLE consumers (
    name text PRIMARY KEY,
    cursor bigint NOT NULL,
    updated_at text NOT NULL
)
"""

# Version 2: the control plane that several processes share (docs/postgres.md, "Running on
# several machines"): who runs which mailbox, and the documents each data directory keeps as files
# on one machine. Applied to a version 1 database as it is; nothing of version 1 changes.
_CONTROL_TABLES = """
-- A mailbox's registry entry, its folders' sync state, consent: each a JSON document, read and
-- written whole like the files of a single-machine data directory. A document of one mailbox
-- names it in `mailbox`, and a write to it is fenced by that mailbox's lease.
CREATE TABLE documents (
    name text PRIMARY KEY,
    mailbox text,
    body jsonb NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- The audit log: one JSON entry per row, hash-chained as in the file (numbered under a lock).
CREATE TABLE audit_log (
    seq bigint PRIMARY KEY,
    entry text NOT NULL
);
-- Each running `run` process, alive while `expires_at` is ahead (renewed by its heartbeat), and
-- the most mailboxes it runs (NULL: no limit).
CREATE TABLE processes (
    id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    capacity integer,
    started_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
-- One row per registered mailbox: the process that runs it until `expires_at`, and the fencing
-- token, one more at every change of owner; every write for the mailbox carries its token.
CREATE TABLE mailbox_leases (
    mailbox text PRIMARY KEY,
    owner text,
    token bigint NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL DEFAULT '-infinity',
    acquired_at timestamptz
);
CREATE INDEX mailbox_leases_by_owner ON mailbox_leases (owner);
-- Messages set aside instead of stopping a folder: the record (the JSON of the file store's
-- `<id>.json`) and the raw bytes (its `<id>.eml`), so any process sees what another quarantined.
CREATE TABLE quarantine (
    id text PRIMARY KEY,
    mailbox text NOT NULL,
    record jsonb NOT NULL,
    raw bytea NOT NULL
);
CREATE INDEX quarantine_by_mailbox ON quarantine (mailbox)
"""

# The statements that bring a database from the version before each key to that version.
_MIGRATIONS = {2: _CONTROL_TABLES}
_OURS = ("elements", "changes", "feed", "consumers", "documents", "audit_log", "processes", "mailbox_leases",
         "quarantine")


class BadStoreDatabase(StorageError):
    """The database holds another program's tables, or a schema newer than this code; nothing in it was changed."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"element store {display_store(url)} cannot be used: {detail}; it was left untouched")


# A silent peer (a network cut, a host gone) fails a connection after this long, rather than
# after the kernel's retransmissions (many minutes): set on every connection, with TCP keep-alives.
NETWORK_TIMEOUT_SECONDS = 10
# A writer's transaction is a few statements in a row; one idle this long lost its client.
IDLE_IN_TRANSACTION_SECONDS = 20


def connect(url: str, *, statement_timeout: float | None = None,
            idle_in_transaction: float = IDLE_IN_TRANSACTION_SECONDS) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection to ``url`` with the schema in place (created on first use).

    Both ends give up on a silent network after :data:`NETWORK_TIMEOUT_SECONDS` (the client by
    libpq's options, the server's end of it by the session's ``tcp_*`` settings), the server ends
    a transaction left idle for ``idle_in_transaction`` seconds (so a client cut off in the middle
    of one does not keep its locks, the change feed's counter among them, for the kernel's two
    hours), and any statement ends after ``statement_timeout`` seconds when given. A database whose
    schema version is newer than :data:`SCHEMA_VERSION`, or that already has an ``elements`` table
    the project did not make, raises :class:`BadStoreDatabase`.
    """
    network_ms = int(NETWORK_TIMEOUT_SECONDS * 1000)
    if statement_timeout is not None:
        network_ms = min(network_ms, int(statement_timeout * 1000))
    options: dict[str, int | str] = {"connect_timeout": max(2, network_ms // 1000), "tcp_user_timeout": network_ms,
               "keepalives": 1, "keepalives_idle": max(1, network_ms // 2000), "keepalives_interval": 1,
               "keepalives_count": 3}
    server = [f"-c tcp_keepalives_idle={max(1, network_ms // 2000)}", "-c tcp_keepalives_interval=1",
              "-c tcp_keepalives_count=3", f"-c tcp_user_timeout={network_ms}",
              f"-c idle_in_transaction_session_timeout={int(idle_in_transaction * 1000)}"]
    if statement_timeout is not None:
        server.append(f"-c statement_timeout={int(statement_timeout * 1000)}")
    options["options"] = " ".join(server)
    connection = psycopg.connect(psycopg.conninfo.make_conninfo(url, **options), autocommit=True)
    try:
        _check_or_create(connection, url)
    except BaseException:
        connection.close()
        raise
    return connection


# Which of some tables exist in the connection's schema. Read from the catalog's table with the
# statement's snapshot, not through to_regclass(): that looks names up in the session's catalog
# cache, which can still say "no such table" after another process created it while this one
# waited for the schema lock (the cache is refreshed at the next relation lock, not per statement).
_EXISTING = ("SELECT coalesce(string_agg(tablename, ', ' ORDER BY tablename), '') FROM pg_catalog.pg_tables"
             " WHERE schemaname = current_schema() AND tablename = ANY(%s)")


def _version(connection: psycopg.Connection[tuple[object, ...]]) -> int | None:
    exists = connection.execute(_EXISTING, (["futurnal_schema"],)).fetchone()
    if not exists or not exists[0]:
        return None
    row = connection.execute("SELECT version FROM futurnal_schema").fetchone()
    return None if row is None else int(str(row[0]))


def _check_or_create(connection: psycopg.Connection[tuple[object, ...]], url: str) -> None:
    if _version(connection) == SCHEMA_VERSION:
        return
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
        version = _version(connection)  # another process may have made it while this one waited
        if version == SCHEMA_VERSION:
            return
        if version is None:
            taken = connection.execute(_EXISTING, (list(_OURS),)).fetchone()
            if taken and taken[0]:
                raise BadStoreDatabase(url, f"it already has tables named {taken[0]} that futurnal-actors did not make")
            _run(connection, _TABLES)
            connection.execute("INSERT INTO futurnal_schema (version) VALUES (1)")
            version = 1
        if version < 1:
            raise BadStoreDatabase(url, f"it has an unknown schema version {version}")
        if version < SCHEMA_VERSION:
            for step in range(version + 1, SCHEMA_VERSION + 1):
                _run(connection, _MIGRATIONS[step])
            connection.execute("UPDATE futurnal_schema SET version = %s", (SCHEMA_VERSION,))
        elif version > SCHEMA_VERSION:
            raise BadStoreDatabase(url, f"it has schema version {version}, newer than this version of "
                                        f"futurnal-actors understands ({SCHEMA_VERSION}): upgrade futurnal-actors")


def _run(connection: psycopg.Connection[tuple[object, ...]], statements: str) -> None:
    for statement in statements.split(";\n"):
        if statement.strip():
            connection.execute(statement.encode())
