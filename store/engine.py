"""Database engines: SQLite in WAL mode with `BEGIN IMMEDIATE` writes, or PostgreSQL through psycopg 3.

SQLite is the embedded default (one process, or several on one machine). PostgreSQL is the store for
several service replicas: `postgresql://user:password@host:5432/dbname` (psycopg 3 is the driver; install
it with `pip install 'petition-triage[postgres]'`). Each process keeps its own connection pool, sized by
`PoolOptions`. The store itself is dialect-neutral; what differs is here and in `store/migrations.py`.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Insert, Table, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url

from store.errors import DatabaseUnavailable, DriverMissing, RejectedValue, WriteConflict

# SQLSTATEs after which the whole transaction can simply run again: serialization failure, deadlock.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class PoolOptions:
    """Connections one process may hold. Replicas x worker processes x (size + overflow) must stay below
    the PostgreSQL server's `max_connections` (100 by default)."""

    size: int = 10
    max_overflow: int = 20
    timeout: float = 10.0  # seconds a request waits for a free connection before the store gives up (503)
    connect_timeout: int = 5  # seconds to reach the server; bounds how long /readyz takes when it is down


def sqlalchemy_url(raw: str) -> URL:
    """The SQLAlchemy URL for a configured one: `postgresql://` and `postgres://` mean psycopg 3."""
    url = make_url(raw)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def backend_of(url: URL) -> Backend:
    name = url.get_backend_name()
    if name == "sqlite":
        return Backend.SQLITE
    if name == "postgresql":
        return Backend.POSTGRESQL
    raise ValueError(f"不支持的数据库 / unsupported database {name!r}: use sqlite:/// or postgresql://")


def libpq_url(url: URL) -> tuple[str, str | None]:
    """A PostgreSQL URL for the command line tools (pg_dump, psql) without the password, and the password
    (to pass in PGPASSWORD, so that it never shows in a process list)."""
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False), url.password


def make_engine(database_url: str, synchronous: str = "FULL", pool: PoolOptions | None = None) -> Engine:
    """An engine for the configured URL (see the module docstring)."""
    pool = pool or PoolOptions()
    url = sqlalchemy_url(database_url)
    if backend_of(url) is Backend.POSTGRESQL:
        return _postgresql_engine(url, pool)
    return _sqlite_engine(url, synchronous, pool)


def _postgresql_engine(url: URL, pool: PoolOptions) -> Engine:
    if importlib.util.find_spec("psycopg") is None:
        raise DriverMissing(
            "使用 PostgreSQL 需要安装 psycopg：pip install 'petition-triage[postgres]' / PostgreSQL needs the "
            "psycopg driver: pip install 'petition-triage[postgres]'"
        )
    return create_engine(
        url,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.timeout,
        pool_pre_ping=True,  # a connection broken by a server restart is replaced, not handed to a request
        connect_args={"connect_timeout": pool.connect_timeout, "application_name": "petition-triage"},
    )


SQLITE_BUSY_SECONDS = 30


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch a new database file to WAL. Processes opening one new file at once can get "database is
    locked" here at once: SQLite does not run the busy handler for this switch, so wait and retry."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_engine(url: URL, synchronous: str, pool: PoolOptions) -> Engine:
    """Write transactions are `BEGIN IMMEDIATE` (WAL, foreign keys on)."""
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS},
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.timeout,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (savepoints work too)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        _enable_wal(cursor)
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("triage_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


@contextmanager
def unavailable_as_store_errors() -> Iterator[None]:
    """Turn "the database cannot be used right now" into the store's errors, which the API answers with 503.

    A retryable conflict (deadlock, serialization failure) becomes `WriteConflict`; a lost or refused
    connection, a locked SQLite file past its busy timeout or an exhausted pool becomes `DatabaseUnavailable`.
    A value the database cannot hold becomes `RejectedValue` (the API validates input so that this
    should not happen; if it does, the answer is a 422 rather than a 500).
    """
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as error:
        if getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
            raise WriteConflict(type(error.orig).__name__) from error
        raise DatabaseUnavailable(type(error.orig).__name__) from error
    except sa_exc.DataError as error:
        raise RejectedValue(type(error.orig).__name__) from error
    except sa_exc.TimeoutError as error:  # no free connection in the pool within PoolOptions.timeout
        raise DatabaseUnavailable("pool timeout") from error
    except sa_exc.DBAPIError as error:
        if error.connection_invalidated:
            raise DatabaseUnavailable(type(error.orig).__name__) from error
        raise


def insert_or_skip(conn: Connection, table: Table) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING`: a row that would break a unique constraint is not inserted
    (and, with RETURNING, returns no id). Both backends spell it the same; SQLAlchemy needs the dialect."""
    dialect_insert = postgresql.insert if conn.dialect.name == Backend.POSTGRESQL else sqlite.insert
    return dialect_insert(table).on_conflict_do_nothing()
