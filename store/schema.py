"""The live table definitions (SQLAlchemy Core). Migrations build the same tables on disk.

`tests/test_store_schema.py` compares this metadata with a freshly migrated database, so a
column added here without a migration (or the other way round) fails the tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database (portable and sortable)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the data layer; use aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = MetaData()

# Ids are INTEGER: 32-bit on PostgreSQL, where comparing one with a larger number is an error, not "no row".
MAX_PETITION_ID = 2**31 - 1

petitions = Table(
    "petitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(200), unique=True),
    Column("idempotency_key", String(200), unique=True),
    Column("text", Text, nullable=False),
    Column("masked_text", Text, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
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
    Column("routed_at", UTCDateTime),
    Column("routed_by", String(200)),
    Column("handed_over_at", UTCDateTime),
    Column("lease_owner", String(200)),
    Column("lease_expires_at", UTCDateTime),
    Column("claimed_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("closed_by", String(200)),
    Column("resolution", Text),
    # The petitioner (migration 3): personal data, shown masked to a department before hand-over, never logged.
    Column("petitioner_name", String(200)),
    Column("petitioner_contact", String(200)),
    Column("headcount", Integer),
    Column("address", String(500)),
    # The department's work (migration 3): acceptance starts the handling clock; one extension.
    Column("accepted_at", UTCDateTime),
    Column("assignee", String(200)),
    Column("handling_due_at", UTCDateTime),
    Column("extension_days", Integer),
    Column("extension_reason", Text),
    Column("extended_at", UTCDateTime),
    Column("returned_at", UTCDateTime),
    Column("reply_summary", Text),
    # keyed hash (HMAC) of the petitioner's normalised contact (migration 4): identifies repeats
    Column("petitioner_key", String(64)),
    Column("repeat_of", Integer),  # suggested at intake: same matter from the same petitioner
    Column("linked_case", Integer),  # confirmed by a clerk: the existing case this item belongs to
    Column("flags", JSON),  # {"litigation": {"flagged": bool, "probability": float}, ...} when a flag model ran
    Index("ix_petitions_claim", "queue", "status", "due_at", "id"),
    Index("ix_petitions_status_due", "status", "due_at"),
    Index("ix_petitions_received", "received_at"),
    Index("ix_petitions_petitioner", "petitioner_key"),
    Index("ix_petitions_created_at", "created_at"),
)

history = Table(
    "petition_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("petition_id", Integer, ForeignKey("petitions.id"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
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

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("petition_id", Integer, ForeignKey("petitions.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("masked_text", Text, nullable=False),
    Column("model_version", String(100), nullable=False),
    Column("predicted_domain", String(64), nullable=False),
    Column("predicted_department", String(64)),
    Column("corrected_domain", String(64), nullable=False),
    Column("corrected_department", String(64), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("role", String(32)),
    Column("auto_routed", Boolean, nullable=False),
    Column("previous_domain", String(64)),
    Column("previous_department", String(64)),
    Index("ix_feedback_created_at", "created_at"),
)
