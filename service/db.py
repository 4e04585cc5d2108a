"""The data layer: petitions, their queue state, history and routing feedback (SQLAlchemy Core).

One `QueueStore` is the only code that touches the database. SQLite in WAL mode is the default;
every write runs in `BEGIN IMMEDIATE`, so writers serialise and a method that returns has
committed (a 201 means the row is on disk). The claim is written as "select the oldest claimable
row FOR UPDATE SKIP LOCKED, then update it only if it is still claimable": on SQLite the
write lock makes that atomic and SKIP LOCKED renders as nothing; on PostgreSQL the same
statements give concurrent workers different rows without blocking each other.

Raw petition text lives only in `petitions.text`; history and feedback hold masked text, ids,
labels and notes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    create_engine,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator

from model.classifier import Prediction
from model.taxonomy import load_taxonomy
from model.text import prepare_text
from service.migrations import migrate

MANUAL_TRIAGE = "manual_triage"
STATUSES = ("queued", "claimed", "routed", "closed")
CHANNELS = ("letter", "visit", "web", "phone")
OPEN_STATUSES = ("queued", "claimed", "routed")


def utcnow() -> datetime:
    return datetime.now(UTC)


def known_queues() -> list[str]:
    """Department ids of the taxonomy plus the manual triage queue, in taxonomy order."""
    return [*load_taxonomy().departments, MANUAL_TRIAGE]


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

petitions = Table(
    "petitions", metadata,
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
)

history = Table(
    "petition_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("petition_id", Integer, ForeignKey("petitions.id"), nullable=False),
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
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("petition_id", Integer, ForeignKey("petitions.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("masked_text", Text, nullable=False),
    Column("model_version", String(100), nullable=False),
    Column("predicted_domain", String(64), nullable=False),
    Column("predicted_department", String(64)),
    Column("corrected_domain", String(64), nullable=False),
    Column("corrected_department", String(64), nullable=False),
)


class StoreError(Exception):
    """Base of the data layer's expected failures (mapped to 4xx by the API)."""


class PetitionNotFound(StoreError):
    pass


class PetitionClosed(StoreError):
    pass


class UnknownQueue(StoreError):
    pass


class IdempotencyConflict(StoreError):
    """The same external id or idempotency key was already used for a different text."""


@dataclass(frozen=True)
class Submission:
    """One petition to store; `prediction` is what the model said about `text`."""

    text: str
    channel: str
    prediction: Prediction
    model_version: str
    received_at: datetime | None = None
    external_id: str | None = None
    idempotency_key: str | None = None
    actor: str = "system"
    role: str = "system"


@dataclass(frozen=True)
class Submitted:
    petition_id: int
    created: bool  # False: an earlier petition with the same external id / idempotency key


@dataclass
class Petition:
    """A petition row plus its state as seen at `now` (lease expiry is applied on read)."""

    row: dict[str, Any]
    status: str
    overdue: bool
    history: list[dict[str, Any]] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.row[key]

    @property
    def id(self) -> int:
        return int(self.row["id"])

    @property
    def queue(self) -> str:
        return str(self.row["queue"])


def suggested_queue(prediction: Prediction, queues: Iterable[str]) -> str:
    """The department's queue when the model is confident about both heads, else manual triage."""
    department = prediction.heads.get("department")
    if prediction.needs_review or department is None or department.label not in set(queues):
        return MANUAL_TRIAGE
    return department.label


def prediction_document(prediction: Prediction) -> dict[str, Any]:
    return {
        "heads": {
            name: {"label": head.label, "confidence": head.confidence, "needs_review": head.needs_review,
                   "ranking": [[label, probability] for label, probability in head.ranking]}
            for name, head in prediction.heads.items()
        },
        "needs_review": prediction.needs_review or "department" not in prediction.heads,
        "explanation": [[term, weight] for term, weight in prediction.explanation],
    }


def make_engine(database_url: str, synchronous: str = "FULL") -> Engine:
    """An engine whose write transactions are `BEGIN IMMEDIATE` on SQLite (WAL, foreign keys on)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           pool_size=20, max_overflow=40)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (savepoints work too)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("triage_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def _effective_status(now: datetime) -> Any:
    """SQL: a claim whose lease ran out counts as back in the queue (no reaper process needed)."""
    return case(
        (and_(petitions.c.status == "claimed", petitions.c.lease_expires_at <= now),
         case((petitions.c.routed_at.is_not(None), "routed"), else_="queued")),
        else_=petitions.c.status,
    )


def _overdue(now: datetime) -> Any:
    """SQL: past due and never handed to the responsible department (see Petition docs)."""
    return and_(petitions.c.due_at < now, petitions.c.handed_over_at.is_(None), petitions.c.status != "closed")


class QueueStore:
    """Petitions and their routing queue. Thread-safe; one instance per process is enough.

    Batch enqueue (issue 5) usage::

        store = QueueStore(database_url)            # creates/migrates the schema
        done = store.submit(Submission(text=..., channel="letter", prediction=model.predict([text])[0],
                                       model_version=manifest.version, external_id="row-17", actor="batch"))
        done.petition_id, done.created              # same id again for a repeated external_id
    """

    def __init__(
        self, database_url: str, *, synchronous: str = "FULL", due_days: int = 15, run_migrations: bool = True,
        queues: Sequence[str] | None = None,
    ) -> None:
        self.engine = make_engine(database_url, synchronous)
        # SQLite has one writer at a time. Letting threads queue on this lock is far faster than letting
        # them collide on BEGIN IMMEDIATE, whose busy handler sleeps and retries (up to 100 ms a time).
        # Other processes on the same file still wait through the busy timeout.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self.engine.dialect.name == "sqlite" else nullcontext()
        )
        self.due_days = due_days
        self.queues: tuple[str, ...] = tuple(queues or known_queues())
        if run_migrations:
            migrate(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction: committed when the block exits without an exception."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    # -- reads ------------------------------------------------------------------------------------

    def _read(self) -> Any:
        return self.engine.connect().execution_options(triage_readonly=True)

    def ping(self) -> bool:
        with self._read() as conn:
            return conn.execute(select(1)).scalar_one() == 1

    def _petition(self, row: Mapping[str, Any], now: datetime) -> Petition:
        data = dict(row)
        status = data["status"]
        if status == "claimed" and data["lease_expires_at"] is not None and data["lease_expires_at"] <= now:
            status = "routed" if data["routed_at"] is not None else "queued"
        overdue = status != "closed" and data["handed_over_at"] is None and now > data["due_at"]
        return Petition(data, status, overdue)

    def get(self, petition_id: int, *, with_history: bool = True, now: datetime | None = None) -> Petition:
        now = now or utcnow()
        with self._read() as conn, conn.begin():
            row = conn.execute(select(petitions).where(petitions.c.id == petition_id)).mappings().first()
            if row is None:
                raise PetitionNotFound(petition_id)
            petition = self._petition(row, now)
            if with_history:
                petition.history = [dict(item) for item in conn.execute(
                    select(history).where(history.c.petition_id == petition_id).order_by(history.c.id)
                ).mappings()]
        return petition

    def find(self, *, external_id: str | None = None, idempotency_key: str | None = None) -> int | None:
        with self._read() as conn, conn.begin():
            return self._find(conn, external_id, idempotency_key)

    @staticmethod
    def _find(conn: Connection, external_id: str | None, idempotency_key: str | None) -> int | None:
        for column, value in ((petitions.c.idempotency_key, idempotency_key),
                              (petitions.c.external_id, external_id)):
            if value is not None:
                found = conn.execute(select(petitions.c.id).where(column == value)).scalar()
                if found is not None:
                    return int(found)
        return None

    def queue_counts(self, now: datetime | None = None) -> dict[str, dict[str, int]]:
        """Per queue: queued, routed, claimed (live lease), overdue, open. Every known queue appears."""
        now = now or utcnow()
        status = _effective_status(now)
        stmt = (
            select(
                petitions.c.queue,
                func.sum(case((status == "queued", 1), else_=0)),
                func.sum(case((status == "routed", 1), else_=0)),
                func.sum(case((status == "claimed", 1), else_=0)),
                func.sum(case((_overdue(now), 1), else_=0)),
                func.count(),
            )
            .where(petitions.c.status != "closed")
            .group_by(petitions.c.queue)
        )
        counts = {queue: {"queued": 0, "routed": 0, "claimed": 0, "overdue": 0, "open": 0} for queue in self.queues}
        with self._read() as conn, conn.begin():
            for queue, queued, routed, claimed, overdue, total in conn.execute(stmt):
                counts[queue] = {"queued": int(queued or 0), "routed": int(routed or 0),
                                 "claimed": int(claimed or 0), "overdue": int(overdue or 0), "open": int(total)}
        return counts

    def list_queue(
        self, queue: str, *, limit: int = 50, offset: int = 0, status: str | None = None,
        now: datetime | None = None,
    ) -> tuple[list[Petition], int]:
        """Open petitions of one queue, oldest due first; returns (page, total)."""
        self._check_queue(queue)
        now = now or utcnow()
        effective = _effective_status(now)
        condition = and_(petitions.c.queue == queue, petitions.c.status != "closed")
        if status is not None:
            condition = and_(condition, effective == status)
        with self._read() as conn, conn.begin():
            total = conn.execute(select(func.count()).select_from(petitions).where(condition)).scalar_one()
            rows = conn.execute(
                select(petitions).where(condition).order_by(petitions.c.due_at, petitions.c.id)
                .limit(limit).offset(offset)
            ).mappings().all()
        return [self._petition(row, now) for row in rows], int(total)

    def feedback(self) -> list[dict[str, Any]]:
        """Routing corrections, oldest first: the retraining set (masked text, predicted vs corrected)."""
        with self._read() as conn, conn.begin():
            return [dict(row) for row in conn.execute(select(feedback).order_by(feedback.c.id)).mappings()]

    # -- writes -----------------------------------------------------------------------------------

    def _check_queue(self, queue: str) -> None:
        if queue not in self.queues:
            raise UnknownQueue(queue)

    def submit(self, submission: Submission, now: datetime | None = None) -> Submitted:
        """Store and enqueue one petition; idempotent on external_id and idempotency_key."""
        return self.submit_many([submission], now)[0]

    def submit_many(self, submissions: Sequence[Submission], now: datetime | None = None) -> list[Submitted]:
        """Store several petitions in one transaction (one commit); duplicates return the original id.

        Raises IdempotencyConflict (nothing stored) when a key is reused for a different text;
        callers that want per-item outcomes check `find` first or submit one at a time.
        """
        now = now or utcnow()
        for attempt in range(2):
            try:
                with self._write() as conn:
                    return [self._insert(conn, submission, now) for submission in submissions]
            except IntegrityError:
                # Only reachable when another process inserted the same key between our lookup and
                # insert (not on SQLite, whose write lock serialises both): the retry finds it.
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def submit_each(
        self, submissions: Sequence[Submission], now: datetime | None = None,
    ) -> list[Submitted | StoreError]:
        """Like submit_many, but a key conflict fails only its own item (one commit for the rest)."""
        now = now or utcnow()
        for attempt in range(2):
            try:
                with self._write() as conn:
                    outcomes: list[Submitted | StoreError] = []
                    for submission in submissions:
                        try:
                            outcomes.append(self._insert(conn, submission, now))
                        except IdempotencyConflict as conflict:  # raised before any write of that item
                            outcomes.append(conflict)
                    return outcomes
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _insert(self, conn: Connection, submission: Submission, now: datetime) -> Submitted:
        text = submission.text.strip()
        existing = self._find(conn, submission.external_id, submission.idempotency_key)
        if existing is not None:
            stored = conn.execute(select(petitions.c.text).where(petitions.c.id == existing)).scalar_one()
            if stored != text:
                raise IdempotencyConflict(existing)
            return Submitted(existing, created=False)
        if submission.channel not in CHANNELS:
            raise ValueError(f"unknown channel {submission.channel!r}")
        prediction = submission.prediction
        received = submission.received_at or now
        queue = suggested_queue(prediction, self.queues)
        department = prediction.heads.get("department")
        domain = prediction.heads["domain"]
        document = prediction_document(prediction)
        petition_id = conn.execute(petitions.insert().values(
            external_id=submission.external_id, idempotency_key=submission.idempotency_key,
            text=text, masked_text=prepare_text(text), channel=submission.channel,
            received_at=received, due_at=received + timedelta(days=self.due_days),
            created_at=now, updated_at=now, created_by=submission.actor,
            status="queued", queue=queue, model_version=submission.model_version,
            predicted_domain=domain.label, domain_confidence=domain.confidence,
            predicted_department=department.label if department else None,
            department_confidence=department.confidence if department else None,
            needs_review=document["needs_review"], prediction=document,
            domain=domain.label, department=department.label if department else None,
        )).inserted_primary_key[0]
        self._log(conn, petition_id, now, submission.actor, submission.role, "submitted",
                  None, "queued", None, queue,
                  details={"model_version": submission.model_version, "domain": domain.label,
                           "department": department.label if department else None,
                           "needs_review": document["needs_review"]})
        return Submitted(int(petition_id), created=True)

    @staticmethod
    def _log(
        conn: Connection, petition_id: int, now: datetime, actor: str, role: str, action: str,
        from_status: str | None, to_status: str | None, from_queue: str | None, to_queue: str | None,
        note: str | None = None, details: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(history.insert().values(
            petition_id=petition_id, at=now, actor=actor, role=role, action=action,
            from_status=from_status, to_status=to_status, from_queue=from_queue, to_queue=to_queue,
            note=note, details=details or {}))

    def claim(
        self, queue: str, worker: str, *, lease_seconds: int, role: str = "system", now: datetime | None = None,
    ) -> Petition | None:
        """Hand the claimable petition due soonest to `worker` with a lease; None when the queue is empty.

        Claimable: queued or routed, or claimed with an expired lease. Claiming from a department
        queue counts as handing the petition over to that department (it stops the overdue clock).
        """
        self._check_queue(queue)
        now = now or utcnow()
        claimable = and_(
            petitions.c.queue == queue,
            or_(petitions.c.status.in_(("queued", "routed")),
                and_(petitions.c.status == "claimed", petitions.c.lease_expires_at <= now)),
        )
        while True:
            with self._write() as conn:
                row = conn.execute(
                    select(petitions.c.id, petitions.c.status, petitions.c.routed_at, petitions.c.lease_owner,
                           petitions.c.handed_over_at)
                    .where(claimable).order_by(petitions.c.due_at, petitions.c.id).limit(1)
                    .with_for_update(skip_locked=True)
                ).mappings().first()
                if row is None:
                    return None
                values: dict[str, Any] = {
                    "status": "claimed", "lease_owner": worker, "claimed_at": now, "updated_at": now,
                    "lease_expires_at": now + timedelta(seconds=lease_seconds),
                }
                if queue != MANUAL_TRIAGE and row["handed_over_at"] is None:
                    values["handed_over_at"] = now
                changed = conn.execute(
                    update(petitions).where(petitions.c.id == row["id"], claimable).values(**values)
                ).rowcount
                if changed != 1:
                    continue  # taken by a concurrent worker (PostgreSQL read committed): try the next one
                previous = row["status"]
                details: dict[str, Any] = {"lease_seconds": lease_seconds}
                if previous == "claimed":
                    details["expired_lease_of"] = row["lease_owner"]
                    previous = "routed" if row["routed_at"] is not None else "queued"
                self._log(conn, row["id"], now, worker, role, "claimed", previous, "claimed", queue, queue,
                          details=details)
            return self.get(row["id"], now=now)

    def route(
        self, petition_id: int, department: str, *, domain: str | None = None, note: str | None = None,
        actor: str, role: str, now: datetime | None = None,
    ) -> tuple[Petition, bool]:
        """Confirm or correct the route; returns (petition, was_correction). Corrections become feedback."""
        self._check_queue(department)
        if department == MANUAL_TRIAGE:
            raise UnknownQueue(department)
        now = now or utcnow()
        with self._write() as conn:
            row = conn.execute(select(petitions).where(petitions.c.id == petition_id)).mappings().first()
            if row is None:
                raise PetitionNotFound(petition_id)
            current = self._petition(row, now)
            if current.status == "closed":
                raise PetitionClosed(petition_id)
            new_domain = domain or row["domain"]
            correction = department != row["predicted_department"] or new_domain != row["predicted_domain"]
            conn.execute(update(petitions).where(petitions.c.id == petition_id).values(
                status="routed", queue=department, department=department, domain=new_domain,
                routed_at=now, routed_by=actor, updated_at=now,
                handed_over_at=func.coalesce(petitions.c.handed_over_at, now),
                lease_owner=None, lease_expires_at=None,
            ))
            self._log(conn, petition_id, now, actor, role, "corrected" if correction else "routed",
                      current.status, "routed", row["queue"], department, note,
                      {"department": department, "domain": new_domain, "correction": correction})
            if correction:
                conn.execute(feedback.insert().values(
                    petition_id=petition_id, created_at=now, actor=actor, masked_text=row["masked_text"],
                    model_version=row["model_version"], predicted_domain=row["predicted_domain"],
                    predicted_department=row["predicted_department"], corrected_domain=new_domain,
                    corrected_department=department))
        return self.get(petition_id, now=now), correction

    def close(
        self, petition_id: int, resolution: str, *, actor: str, role: str, now: datetime | None = None,
    ) -> Petition:
        now = now or utcnow()
        with self._write() as conn:
            row = conn.execute(select(petitions).where(petitions.c.id == petition_id)).mappings().first()
            if row is None:
                raise PetitionNotFound(petition_id)
            current = self._petition(row, now)
            if current.status == "closed":
                raise PetitionClosed(petition_id)
            conn.execute(update(petitions).where(petitions.c.id == petition_id).values(
                status="closed", resolution=resolution, closed_at=now, closed_by=actor, updated_at=now,
                lease_owner=None, lease_expires_at=None,
            ))
            self._log(conn, petition_id, now, actor, role, "closed", current.status, "closed",
                      row["queue"], row["queue"])
        return self.get(petition_id, now=now)
