"""A tiny versioned migration table, so an existing database file survives upgrades.

Each migration is frozen once released: it builds its own table objects (never the live ones in
store/schema.py, which keep evolving) and runs once, inside a write transaction that also records
its version. Append new migrations; never edit old ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    inspect,
    select,
)
from sqlalchemy.engine import Connection, Engine

# The PostgreSQL advisory lock that serialises migrations of one database (any fixed 64-bit number that
# no other application on the same server uses for its own advisory locks).
MIGRATION_LOCK_ID = 0x7472696167650001  # "triage" + 1


class MigrationError(RuntimeError):
    """The database is newer than this code, or a migration failed."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _version_table(metadata: MetaData) -> Table:
    return Table(
        "schema_migrations",
        metadata,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("description", String(200), nullable=False),
        Column("applied_at", DateTime, nullable=False),
    )


def _m001_initial(conn: Connection) -> None:
    metadata = MetaData()
    Table(
        "petitions",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("external_id", String(200), unique=True),
        Column("idempotency_key", String(200), unique=True),
        Column("text", Text, nullable=False),
        Column("masked_text", Text, nullable=False),
        Column("channel", String(16), nullable=False),
        Column("received_at", DateTime, nullable=False),
        Column("due_at", DateTime, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
        Column("created_by", String(200), nullable=False),
        Column("status", String(16), nullable=False),
        Column("queue", String(64), nullable=False),
        Column("model_version", String(100), nullable=False),
        Column("predicted_domain", String(64), nullable=False),
        Column("domain_confidence", Float, nullable=False),
        Column("predicted_department", String(64)),
        Column("department_confidence", Float),
        Column("needs_review", Boolean, nullable=False),
        Column("prediction", JSON, nullable=False),
        Column("domain", String(64)),
        Column("department", String(64)),
        Column("routed_at", DateTime),
        Column("routed_by", String(200)),
        Column("handed_over_at", DateTime),
        Column("lease_owner", String(200)),
        Column("lease_expires_at", DateTime),
        Column("claimed_at", DateTime),
        Column("closed_at", DateTime),
        Column("closed_by", String(200)),
        Column("resolution", Text),
        Index("ix_petitions_claim", "queue", "status", "due_at", "id"),
    )
    Table(
        "petition_history",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("petition_id", Integer, ForeignKey("petitions.id"), nullable=False, index=True),
        Column("at", DateTime, nullable=False),
        Column("actor", String(200), nullable=False),
        Column("role", String(32), nullable=False),
        Column("action", String(32), nullable=False),
        Column("from_status", String(16)),
        Column("to_status", String(16)),
        Column("from_queue", String(64)),
        Column("to_queue", String(64)),
        Column("note", Text),
        Column("details", JSON),
    )
    Table(
        "feedback",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("petition_id", Integer, ForeignKey("petitions.id"), nullable=False, index=True),
        Column("created_at", DateTime, nullable=False),
        Column("actor", String(200), nullable=False),
        Column("masked_text", Text, nullable=False),
        Column("model_version", String(100), nullable=False),
        Column("predicted_domain", String(64), nullable=False),
        Column("predicted_department", String(64)),
        Column("corrected_domain", String(64), nullable=False),
        Column("corrected_department", String(64), nullable=False),
    )
    metadata.create_all(conn)


def _m002_open_due_index(conn: Connection) -> None:
    """Overdue counts scan open petitions by due date across all queues."""
    metadata = MetaData()
    petitions = Table("petitions", metadata, Column("status", String(16)), Column("due_at", DateTime))
    Index("ix_petitions_status_due", petitions.c.status, petitions.c.due_at).create(conn)


def _m003_department_work(conn: Connection) -> None:
    """Petitioner fields, the department's acceptance, extension and return, the reply summary."""
    columns = (
        Column("petitioner_name", String(200)),
        Column("petitioner_contact", String(200)),
        Column("headcount", Integer),
        Column("address", String(500)),
        Column("accepted_at", DateTime),
        Column("assignee", String(200)),
        Column("handling_due_at", DateTime),
        Column("extension_days", Integer),
        Column("extension_reason", Text),
        Column("extended_at", DateTime),
        Column("returned_at", DateTime),
        Column("reply_summary", Text),
    )
    for column in columns:
        kind = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE petitions ADD COLUMN {column.name} {kind}")
    metadata = MetaData()
    petitions = Table("petitions", metadata, Column("received_at", DateTime))
    Index("ix_petitions_received", petitions.c.received_at).create(conn)


def _m004_repeats_and_flags(conn: Connection) -> None:
    """Repeat petitions (keyed hash of the petitioner's contact, suggested and linked case) and flags."""
    for column in (
        "petitioner_key VARCHAR(64)",
        "repeat_of INTEGER",
        "linked_case INTEGER",
        "flags JSON",
    ):
        conn.exec_driver_sql(f"ALTER TABLE petitions ADD COLUMN {column}")
    metadata = MetaData()
    petitions = Table("petitions", metadata, Column("petitioner_key", String(64)))
    Index("ix_petitions_petitioner", petitions.c.petitioner_key).create(conn)


def _m005_route_decisions(conn: Connection) -> None:
    """Every decision on a suggestion (accepted, corrected, re-routed) becomes feedback, not only corrections.

    Rows written before this migration were all corrections of suggestions awaiting review.
    """
    for column in (
        "decision VARCHAR(16) NOT NULL DEFAULT 'corrected'",
        "role VARCHAR(32)",
        "auto_routed BOOLEAN NOT NULL DEFAULT FALSE",
        "previous_domain VARCHAR(64)",
        "previous_department VARCHAR(64)",
    ):
        conn.exec_driver_sql(f"ALTER TABLE feedback ADD COLUMN {column}")
    metadata = MetaData()
    feedback = Table("feedback", metadata, Column("created_at", DateTime))
    petitions = Table("petitions", metadata, Column("created_at", DateTime))
    Index("ix_feedback_created_at", feedback.c.created_at).create(conn)
    Index("ix_petitions_created_at", petitions.c.created_at).create(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "petitions, history and feedback tables", _m001_initial),
    Migration(2, "index on (status, due_at) for overdue counts", _m002_open_due_index),
    Migration(3, "petitioner fields and the department's work: accept, extend, return, reply", _m003_department_work),
    Migration(4, "petitioner key, repeat_of, linked_case and flags on petitions", _m004_repeats_and_flags),
    Migration(5, "feedback records every route decision; indexes for weekly statistics", _m005_route_decisions),
)
LATEST = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_migrations"):
        return 0
    table = _version_table(MetaData())
    versions = conn.execute(select(table.c.version)).scalars().all()
    return max(versions, default=0)


def migrate(engine: Engine, target: int = LATEST) -> list[int]:
    """Apply pending migrations up to `target`; returns the versions applied (empty when up to date).

    Runs in one write transaction, so two processes (replicas) starting at once cannot both apply the same
    migration: on SQLite BEGIN IMMEDIATE takes the write lock; on PostgreSQL the transaction first takes an
    advisory lock (released at commit), so the second replica waits, then finds the schema up to date.
    """
    applied: list[int] = []
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_ID)))
        table = _version_table(MetaData())
        table.create(conn, checkfirst=True)
        have = current_version(conn)
        if have > LATEST:
            raise MigrationError(
                f"数据库结构版本 {have} 高于本程序支持的 {LATEST} / database schema version {have} is newer "
                f"than this code ({LATEST}); upgrade the service"
            )
        for migration in MIGRATIONS:
            if have < migration.version <= target:
                migration.apply(conn)
                conn.execute(
                    table.insert().values(
                        version=migration.version,
                        description=migration.description,
                        applied_at=datetime.now(UTC).replace(tzinfo=None),
                    )
                )
                applied.append(migration.version)
    return applied
