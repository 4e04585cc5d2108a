"""The petition store: petitions, their queue state, history and routing feedback.

`QueueStore` is the only code that touches the queue database. SQLite in WAL mode is the default;
every write runs in `BEGIN IMMEDIATE`, so writers serialise and a method that returns has
committed (a 201 means the row is on disk). The claim is written as "select the oldest claimable
row FOR UPDATE SKIP LOCKED, then update it only if it is still claimable": on SQLite the write
lock makes that atomic and SKIP LOCKED renders as nothing; on PostgreSQL the same statements give
concurrent workers (threads, processes, replicas) different rows without blocking each other.
Idempotency rests on the unique constraints on `external_id` and `idempotency_key`: a submission is
inserted with ON CONFLICT DO NOTHING and, when nothing was inserted, the holder of the key is read,
so two replicas racing with the same key store it once. Route and close lock their row (FOR UPDATE).
When the database cannot be used, methods raise `DatabaseUnavailable` (nothing was committed).

Raw petition text lives only in `petitions.text`; history and feedback hold masked text, ids,
labels and notes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, bindparam, case, func, not_, or_, select, update
from sqlalchemy.engine import Connection

from model.flags import Flag
from model.taxonomy import load_taxonomy
from model.text import mask_as_written, mask_petitioner
from store import rules, workflow
from store.engine import PoolOptions, insert_or_skip, make_engine, unavailable_as_store_errors
from store.errors import (
    ExtensionRefused,
    IdempotencyConflict,
    LinkRefused,
    PetitionNotFound,
    StoreError,
    UnknownQueue,
    WriteConflict,
)
from store.migrations import migrate
from store.records import (
    DecisionCount,
    HistoryEntry,
    PetitionBrief,
    Petitioner,
    PetitionQuery,
    PetitionRecord,
    QueueCounts,
    RecentPetition,
    Routed,
    RouteDecision,
    Submission,
    Submitted,
    SuggestionCount,
)
from store.rules import Deadlines
from store.schema import MAX_PETITION_ID, UTCDateTime, feedback, history, petitions
from store.vocabulary import MANUAL_TRIAGE, Action, Channel, Clock, Decision, Role, SortOrder, Status

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


def known_queues() -> list[str]:
    """Department ids of the taxonomy plus the manual triage queue, in taxonomy order."""
    return [*load_taxonomy().departments, MANUAL_TRIAGE]


def _with_state(now: rules.Instant) -> Select[Any]:
    """Petition rows plus their status and overdue flags as of `now` (the rules, evaluated in SQL)."""
    return select(
        petitions,
        rules.effective_status(now).label("effective_status"),
        rules.clock_overdue(Clock.HAND_OVER, now).label("is_hand_over_overdue"),
        rules.clock_overdue(Clock.HANDLING, now).label("is_handling_overdue"),
    )


# Read before every similar-petition lookup (store/similar.py): built once, like the next one.
_TEXTS_AFTER = (
    select(petitions.c.id, petitions.c.masked_text)
    .where(petitions.c.id > bindparam("last_id"))
    .order_by(petitions.c.id)
    .limit(bindparam("limit"))
)
# One petition with its state, built once: building the rules' expressions took longer than running them.
_ONE_WITH_STATE = _with_state(bindparam("now", type_=UTCDateTime())).where(petitions.c.id == bindparam("petition_id"))


def _like_pattern(needle: str) -> str:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _text_match(text: str) -> ColumnElement[bool]:
    """The masked text contains the (masked) query, the external id contains it, or it is the number.

    Case-insensitive on both databases (`ilike`): SQLite's LIKE ignores ASCII case, PostgreSQL's does not."""
    needle = text.strip()
    options: list[ColumnElement[bool]] = [
        petitions.c.masked_text.ilike(_like_pattern(mask_as_written(needle)), escape="\\"),
        petitions.c.external_id.ilike(_like_pattern(needle), escape="\\"),
    ]
    number = needle.removeprefix("#").removeprefix("第").removesuffix("号")
    # isdecimal, not isdigit: "①" and "²" are digits that int() refuses.
    if number.isdecimal() and int(number) <= MAX_PETITION_ID:
        options.append(petitions.c.id == int(number))
    return or_(*options)


def _query_condition(query: PetitionQuery, now: datetime) -> ColumnElement[bool]:
    status = rules.effective_status(now)
    conditions: list[ColumnElement[bool]] = [
        status.in_(query.statuses) if query.statuses else petitions.c.status != Status.CLOSED
    ]
    if query.queues:
        conditions.append(petitions.c.queue.in_(query.queues))
    if query.channel is not None:
        conditions.append(petitions.c.channel == query.channel)
    if query.overdue is not None:
        conditions.append(rules.overdue(now) if query.overdue else not_(rules.overdue(now)))
    if query.flag is not None:
        conditions.append(rules.flagged(query.flag))
    if query.received_from is not None:
        conditions.append(petitions.c.received_at >= query.received_from)
    if query.received_to is not None:
        conditions.append(petitions.c.received_at <= query.received_to)
    if query.text and query.text.strip():
        conditions.append(_text_match(query.text))
    return and_(*conditions)


def _week_of(column: Any, starts: Sequence[datetime]) -> ColumnElement[int]:
    """The index of the last of the ascending `starts` at or before the column's time (-1 before them all)."""
    return case(*((column >= start, index) for index, start in reversed(list(enumerate(starts)))), else_=-1)


def _ordering(sort: SortOrder) -> list[Any]:
    """Returned items first in the default (due date) order: a clerk must look at them again."""
    returned_first = case((petitions.c.status == Status.RETURNED, 0), else_=1)
    due = rules.next_due()
    orders: dict[SortOrder, list[Any]] = {
        SortOrder.DUE: [returned_first, due, petitions.c.id],
        SortOrder.DUE_DESC: [due.desc(), petitions.c.id.desc()],
        SortOrder.RECEIVED: [petitions.c.received_at, petitions.c.id],
        SortOrder.RECEIVED_DESC: [petitions.c.received_at.desc(), petitions.c.id.desc()],
    }
    return orders[sort]


# The caller's own check on the locked row of a workflow step (`QueueStore._act`); refuses by raising.
Guard = Callable[[PetitionRecord], None]


class QueueStore:
    """Petitions and their routing queue. Thread-safe; one instance per process is enough.

    Batch enqueue usage::

        store = QueueStore(database_url)            # creates/migrates the schema
        done = store.submit(Submission(text=..., channel=Channel.LETTER, prediction=model.predict([text])[0],
                                       model_version=manifest.version, external_id="row-17", actor="batch"))
        done.petition_id, done.created              # same id again for a repeated external_id
    """

    def __init__(
        self,
        database_url: str,
        *,
        synchronous: str = "FULL",
        deadlines: Deadlines | None = None,
        run_migrations: bool = True,
        queues: Sequence[str] | None = None,
        pool: PoolOptions | None = None,
    ) -> None:
        self.engine = make_engine(database_url, synchronous, pool)
        # SQLite has one writer at a time. Letting threads queue on this lock is far faster than letting
        # them collide on BEGIN IMMEDIATE, whose busy handler sleeps and retries (up to 100 ms a time).
        # Other processes on the same file still wait through the busy timeout.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self.engine.dialect.name == "sqlite" else nullcontext()
        )
        self.deadlines = deadlines or Deadlines()
        self.queues: tuple[str, ...] = tuple(queues or known_queues())
        if run_migrations:
            with unavailable_as_store_errors():
                migrate(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction: committed when the block exits without an exception."""
        with unavailable_as_store_errors(), self._write_lock, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read transaction (plain BEGIN on SQLite: readers never wait for the write lock)."""
        with (
            unavailable_as_store_errors(),
            self.engine.connect().execution_options(triage_readonly=True) as conn,
            conn.begin(),
        ):
            yield conn

    # -- reads ------------------------------------------------------------------------------------

    def ping(self) -> bool:
        with self._read() as conn:
            return bool(conn.execute(select(1)).scalar_one() == 1)

    @staticmethod
    def _load(
        conn: Connection, petition_id: int, now: datetime, with_history: bool, for_update: bool = False
    ) -> PetitionRecord:
        if not 0 < petition_id <= MAX_PETITION_ID:  # no such row; PostgreSQL would reject the comparison
            raise PetitionNotFound(petition_id)
        query = _ONE_WITH_STATE.with_for_update() if for_update else _ONE_WITH_STATE
        row = conn.execute(query, {"now": now, "petition_id": petition_id}).mappings().first()
        if row is None:
            raise PetitionNotFound(petition_id)
        entries: tuple[HistoryEntry, ...] = ()
        if with_history:
            entries = tuple(
                HistoryEntry.from_row(item)
                for item in conn.execute(
                    select(history).where(history.c.petition_id == petition_id).order_by(history.c.id)
                ).mappings()
            )
        return PetitionRecord.from_row(row, entries)

    def get(self, petition_id: int, *, with_history: bool = True, now: datetime | None = None) -> PetitionRecord:
        with self._read() as conn:
            return self._load(conn, petition_id, now or utcnow(), with_history)

    def find(self, *, external_id: str | None = None, idempotency_key: str | None = None) -> int | None:
        if external_id is None and idempotency_key is None:
            return None  # most submissions carry neither: no connection to open
        with self._read() as conn:
            return self._find(conn, external_id, idempotency_key)

    @staticmethod
    def _find(conn: Connection, external_id: str | None, idempotency_key: str | None) -> int | None:
        for column, value in (
            (petitions.c.idempotency_key, idempotency_key),
            (petitions.c.external_id, external_id),
        ):
            if value is not None:
                found = conn.execute(select(petitions.c.id).where(column == value)).scalar()
                if found is not None:
                    return int(found)
        return None

    def queue_counts(self, now: datetime | None = None) -> dict[str, QueueCounts]:
        """Per queue: open petitions by status, overdue on either clock and on each. Every known queue appears."""
        now = now or utcnow()
        status = rules.effective_status(now)

        def count(condition: Any) -> Any:
            return func.sum(case((condition, 1), else_=0))

        stmt = (
            select(
                petitions.c.queue,
                count(status == Status.QUEUED),
                count(status == Status.ROUTED),
                count(status == Status.CLAIMED),
                count(status == Status.ACCEPTED),
                count(status == Status.RETURNED),
                count(rules.overdue(now)),
                count(rules.clock_overdue(Clock.HAND_OVER, now)),
                count(rules.clock_overdue(Clock.HANDLING, now)),
                count(rules.flagged(Flag.LITIGATION)),
                count(rules.flagged(Flag.COLLECTIVE)),
                func.count(),
            )
            .where(petitions.c.status != Status.CLOSED)
            .group_by(petitions.c.queue)
        )
        counts = {queue: QueueCounts() for queue in self.queues}
        with self._read() as conn:
            for queue, *numbers, total in conn.execute(stmt):
                queued, routed, claimed, accepted, returned, overdue, hand_over, handling, litigation, collective = (
                    int(value or 0) for value in numbers
                )
                counts[queue] = QueueCounts(
                    queued=queued,
                    routed=routed,
                    claimed=claimed,
                    accepted=accepted,
                    returned=returned,
                    overdue=overdue,
                    hand_over_overdue=hand_over,
                    handling_overdue=handling,
                    open=int(total),
                    litigation=litigation,
                    collective=collective,
                )
        return counts

    def search(self, query: PetitionQuery, now: datetime | None = None) -> tuple[list[PetitionRecord], int]:
        """Petitions matching `query` in its order; returns (page, total matching)."""
        for queue in query.queues:
            self._check_queue(queue)
        now = now or utcnow()
        condition = _query_condition(query, now)
        with self._read() as conn:
            total = conn.execute(select(func.count()).select_from(petitions).where(condition)).scalar_one()
            rows = (
                conn.execute(
                    _with_state(now)
                    .where(condition)
                    .order_by(*_ordering(query.sort))
                    .limit(query.limit)
                    .offset(query.offset)
                )
                .mappings()
                .all()
            )
        return [PetitionRecord.from_row(row) for row in rows], int(total)

    def list_queue(
        self,
        queue: str,
        *,
        limit: int = 50,
        offset: int = 0,
        status: Status | None = None,
        now: datetime | None = None,
    ) -> tuple[list[PetitionRecord], int]:
        """Open petitions of one queue, returned ones first, then soonest due; returns (page, total)."""
        query = PetitionQuery(
            queues=(queue,), statuses=(status,) if status else (), limit=limit, offset=offset, sort=SortOrder.DUE
        )
        return self.search(query, now)

    def texts_after(self, last_id: int, limit: int = 10_000) -> list[tuple[int, str]]:
        """(id, masked text) of petitions stored after `last_id`, in id order: feeds the similarity index."""
        with self._read() as conn:
            rows = conn.execute(_TEXTS_AFTER, {"last_id": last_id, "limit": limit})
            return [(int(row.id), str(row.masked_text)) for row in rows]

    def briefs(
        self, *, ids: Sequence[int] = (), petitioner_key: str | None = None, now: datetime | None = None
    ) -> list[PetitionBrief]:
        """Id, status, queue and received time of the given petitions, or of one petitioner's (newest first)."""
        if not ids and petitioner_key is None:
            return []
        condition = petitions.c.id.in_(list(ids)) if ids else petitions.c.petitioner_key == petitioner_key
        stmt = (
            select(
                petitions.c.id,
                petitions.c.queue,
                petitions.c.received_at,
                petitions.c.petitioner_key,
                rules.effective_status(now or utcnow()).label("effective_status"),
            )
            .where(condition)
            .order_by(petitions.c.id.desc())
            .limit(max(len(ids), 200))
        )
        with self._read() as conn:
            return [PetitionBrief.from_row(row) for row in conn.execute(stmt).mappings()]

    def received_since(self, since: datetime, now: datetime | None = None) -> list[RecentPetition]:
        """Petitions received at or after `since`, oldest first: the input of hot-topic clustering."""
        stmt = (
            select(
                petitions.c.id,
                petitions.c.masked_text,
                petitions.c.received_at,
                petitions.c.petitioner_key,
                petitions.c.domain,
                petitions.c.department,
                petitions.c.queue,
                rules.effective_status(now or utcnow()).label("effective_status"),
            )
            .where(petitions.c.received_at >= since)
            .order_by(petitions.c.received_at, petitions.c.id)
        )
        with self._read() as conn:
            return [
                RecentPetition(
                    id=row["id"],
                    masked_text=row["masked_text"],
                    received_at=row["received_at"],
                    petitioner_key=row["petitioner_key"],
                    domain=row["domain"],
                    department=row["department"],
                    status=Status(row["effective_status"]),
                    queue=row["queue"],
                )
                for row in conn.execute(stmt).mappings()
            ]

    def feedback(self, since: datetime | None = None) -> list[RouteDecision]:
        """Every decision on a suggestion, oldest first: the retraining set (masked text, suggested vs decided)."""
        query = select(feedback).order_by(feedback.c.id)
        if since is not None:
            query = query.where(feedback.c.created_at >= since)
        with self._read() as conn:
            return [RouteDecision.from_row(row) for row in conn.execute(query).mappings()]

    def _weekly_counts(
        self, at: Any, columns: Sequence[ColumnElement[Any]], starts: Sequence[datetime], until: datetime
    ) -> list[Any]:
        """Rows from `starts[0]` until `until` (by the time column `at`) counted by week and `columns`.

        The week is grouped in a subquery: PostgreSQL cannot match a GROUP BY expression whose bound
        parameters differ from the SELECT's."""
        weekly = select(_week_of(at, starts).label("week"), *columns).where(at >= starts[0], at < until).subquery()
        with self._read() as conn:
            return list(conn.execute(select(weekly, func.count().label("count")).group_by(*weekly.c)).mappings())

    def suggestions_by_week(self, starts: Sequence[datetime], until: datetime) -> list[SuggestionCount]:
        """Petitions registered from `starts[0]` until `until`, by week, suggested department and whether
        they needed review."""
        columns = [petitions.c.predicted_department.label("department"), petitions.c.needs_review]
        return [
            SuggestionCount(
                week=row["week"],
                department=row["department"],
                needs_review=bool(row["needs_review"]),
                count=row["count"],
            )
            for row in self._weekly_counts(petitions.c.created_at, columns, starts, until)
        ]

    def decisions_by_week(self, starts: Sequence[datetime], until: datetime) -> list[DecisionCount]:
        """Decisions on suggestions taken from `starts[0]` until `until`, by week, suggested and decided
        department, kind of decision and whether the suggestion had been routed automatically."""
        columns = [
            feedback.c.predicted_department.label("suggested"),
            feedback.c.corrected_department.label("decided"),
            feedback.c.decision,
            feedback.c.auto_routed,
        ]
        return [
            DecisionCount(
                week=row["week"],
                suggested=row["suggested"],
                decided=row["decided"],
                decision=Decision(row["decision"]),
                auto_routed=bool(row["auto_routed"]),
                count=row["count"],
            )
            for row in self._weekly_counts(feedback.c.created_at, columns, starts, until)
        ]

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
        callers that want per-item outcomes use `submit_each`.
        """
        stamp = now or utcnow()
        return self._retrying(lambda conn: [self._insert(conn, submission, stamp) for submission in submissions])

    def submit_each(
        self, submissions: Sequence[Submission], now: datetime | None = None
    ) -> list[Submitted | StoreError]:
        """Like submit_many, but a key conflict fails only its own item (one commit for the rest)."""
        stamp = now or utcnow()

        def insert_each(conn: Connection) -> list[Submitted | StoreError]:
            outcomes: list[Submitted | StoreError] = []
            for submission in submissions:
                try:
                    outcomes.append(self._insert(conn, submission, stamp))
                except IdempotencyConflict as conflict:  # raised before any write of that item
                    outcomes.append(conflict)
            return outcomes

        return self._retrying(insert_each)

    def _retrying(self, work: Callable[[Connection], T], attempts: int = 3) -> T:
        """Run a write transaction, again when PostgreSQL aborted it for a deadlock with another replica's
        batch (inserts whose keys overlap, in different orders): the rerun sees the other side committed."""
        for attempt in range(attempts):
            try:
                with self._write() as conn:
                    return work(conn)
            except WriteConflict:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _insert(self, conn: Connection, submission: Submission, now: datetime) -> Submitted:
        """Insert unless the external id or idempotency key is taken; then the holder answers (or conflicts).

        Insert first, look up only on a conflict: a read-then-insert would let two replicas both miss
        the key and both insert (PostgreSQL waits for the other transaction, then skips the insert).
        """
        text = submission.text.strip()
        channel = Channel(submission.channel)  # ValueError for an unknown channel
        prediction = submission.prediction
        received = submission.received_at or now
        queue = rules.suggested_queue(prediction, self.queues)
        department = prediction.heads.get("department")
        domain = prediction.heads["domain"]
        document = rules.prediction_document(prediction)
        petitioner = submission.petitioner or Petitioner()
        # Values as execute parameters rather than `.values(...)`: building the statement per row coerced
        # every column again, which cost more than the insert itself.
        inserted = conn.execute(
            insert_or_skip(conn, petitions).returning(petitions.c.id),
            dict(
                external_id=submission.external_id,
                idempotency_key=submission.idempotency_key,
                text=text,
                masked_text=mask_petitioner(mask_as_written(text), petitioner.name, petitioner.address),
                channel=channel,
                received_at=received,
                due_at=self.deadlines.hand_over_due(received),
                created_at=now,
                updated_at=now,
                created_by=submission.actor,
                status=Status.QUEUED,
                queue=queue,
                model_version=submission.model_version,
                predicted_domain=domain.label,
                domain_confidence=domain.confidence,
                predicted_department=department.label if department else None,
                department_confidence=department.confidence if department else None,
                needs_review=document["needs_review"],
                prediction=document,
                domain=domain.label,
                department=department.label if department else None,
                petitioner_name=petitioner.name,
                petitioner_contact=petitioner.contact,
                headcount=petitioner.headcount,
                address=petitioner.address,
                petitioner_key=submission.petitioner_key,
                repeat_of=submission.repeat_of,
                flags=rules.flags_document(prediction),
            ),
        ).scalar()
        if inserted is None:
            existing = self._find(conn, submission.external_id, submission.idempotency_key)
            if existing is None:  # the holder of the key was rolled back meanwhile: let the caller retry
                raise WriteConflict("unique key released")
            stored = conn.execute(select(petitions.c.text).where(petitions.c.id == existing)).scalar_one()
            if stored != text:
                raise IdempotencyConflict(existing)
            return Submitted(existing, created=False)
        petition_id = int(inserted)
        self._log(
            conn,
            petition_id,
            now,
            submission.actor,
            submission.role,
            Action.SUBMITTED,
            None,
            Status.QUEUED,
            None,
            queue,
            details={
                "model_version": submission.model_version,
                "domain": domain.label,
                "department": department.label if department else None,
                "needs_review": document["needs_review"],
                **({"repeat_of": submission.repeat_of} if submission.repeat_of else {}),
            },
        )
        return Submitted(petition_id, created=True)

    @staticmethod
    def _log(
        conn: Connection,
        petition_id: int,
        now: datetime,
        actor: str,
        role: Role,
        action: Action,
        from_status: Status | None,
        to_status: Status | None,
        from_queue: str | None,
        to_queue: str | None,
        note: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(
            history.insert(),
            dict(
                petition_id=petition_id,
                at=now,
                actor=actor,
                role=role,
                action=action,
                from_status=from_status,
                to_status=to_status,
                from_queue=from_queue,
                to_queue=to_queue,
                note=None if note is None else mask_as_written(note),  # notes never hold raw personal data
                details=details or {},
            ),
        )

    def claim(
        self, queue: str, worker: str, *, lease_seconds: int, role: Role = Role.SYSTEM, now: datetime | None = None
    ) -> PetitionRecord | None:
        """Hand the next claimable petition to `worker` with a lease (in the list's order: returned items
        first, then the one due soonest); None when the queue is empty.

        Claimable: queued or routed, or claimed with an expired lease. Claiming from a department
        queue counts as handing the petition over to that department (it stops the overdue clock).
        """
        self._check_queue(queue)
        now = now or utcnow()
        claimable = rules.claimable(queue, now)
        while True:
            with self._write() as conn:
                row = (
                    conn.execute(
                        _with_state(now)
                        .where(claimable)
                        .order_by(*_ordering(SortOrder.DUE))  # the list's order: returned items first
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                    .mappings()
                    .first()
                )
                if row is None:
                    return None
                current = PetitionRecord.from_row(row)
                values: dict[str, Any] = {
                    "status": Status.CLAIMED,
                    "lease_owner": worker,
                    "claimed_at": now,
                    "updated_at": now,
                    "lease_expires_at": now + timedelta(seconds=lease_seconds),
                }
                if rules.hands_over(queue) and current.handed_over_at is None:
                    values["handed_over_at"] = now
                changed = conn.execute(
                    update(petitions).where(petitions.c.id == current.id, claimable).values(**values)
                ).rowcount
                if changed != 1:
                    continue  # taken by a concurrent worker (PostgreSQL read committed): try the next one
                details: dict[str, Any] = {"lease_seconds": lease_seconds}
                if row["status"] == Status.CLAIMED:
                    details["expired_lease_of"] = current.lease_owner
                self._log(
                    conn,
                    current.id,
                    now,
                    worker,
                    role,
                    Action.CLAIMED,
                    current.status,
                    Status.CLAIMED,
                    queue,
                    queue,
                    details=details,
                )
            return self.get(current.id, now=now)

    def _transition(
        self,
        conn: Connection,
        current: PetitionRecord,
        action: Action,
        actor: str,
        role: Role,
        now: datetime,
        *,
        to_queue: str | None = None,
        note: str | None = None,
        details: dict[str, Any] | None = None,
        **values: Any,
    ) -> None:
        """Apply `action` if store/workflow.py allows it from the current status (and queue), and record
        it in the history. A move to another status releases any lease; a note or an extension does not."""
        status = workflow.check(current.id, action, current.status, current.queue)
        if workflow.TRANSITIONS[action].target is not None:
            values.update(status=status, lease_owner=None, lease_expires_at=None)
        queue = to_queue or current.queue
        conn.execute(
            update(petitions).where(petitions.c.id == current.id).values(queue=queue, updated_at=now, **values)
        )
        self._log(
            conn, current.id, now, actor, role, action, current.status, status, current.queue, queue, note, details
        )

    def _act(
        self,
        petition_id: int,
        action: Action,
        actor: str,
        role: Role,
        now: datetime | None,
        values: Callable[[PetitionRecord, datetime], dict[str, Any]] = lambda _current, _now: {},
        guard: Guard | None = None,
        **options: Any,
    ) -> PetitionRecord:
        """One checked transition in its own write transaction; `values(current, now)` gives the columns to set.

        `guard(current)` runs on the locked row before anything changes and refuses by raising: the caller's
        own checks (who may act on which queue) must see the row as it is now, not as it was read before
        the transaction, or a department could act on an item a clerk had just moved to another queue."""
        now = now or utcnow()
        with self._write() as conn:
            current = self._load(conn, petition_id, now, with_history=False, for_update=True)
            if guard is not None:
                guard(current)
            workflow.check(current.id, action, current.status, current.queue)  # before `values` looks at it
            self._transition(conn, current, action, actor, role, now, **options, **values(current, now))
        return self.get(petition_id, now=now)

    def route(
        self,
        petition_id: int,
        department: str,
        *,
        domain: str | None = None,
        note: str | None = None,
        actor: str,
        role: Role,
        now: datetime | None = None,
    ) -> Routed:
        """Confirm or correct the route.

        Every decision that accepts, corrects or changes a route is recorded as feedback (see
        `PetitionRecord.decision_on`).
        """
        self._check_queue(department)
        if department == MANUAL_TRIAGE:
            raise UnknownQueue(department)
        now = now or utcnow()
        with self._write() as conn:
            current = self._load(conn, petition_id, now, with_history=False, for_update=True)
            new_domain = domain or current.domain
            correction = department != current.predicted_department or new_domain != current.predicted_domain
            self._transition(
                conn,
                current,
                Action.CORRECTED if correction else Action.ROUTED,
                actor,
                role,
                now,
                to_queue=department,
                note=note,
                details={"department": department, "domain": new_domain, "correction": correction},
                department=department,
                domain=new_domain,
                routed_at=now,
                routed_by=actor,
                handed_over_at=func.coalesce(petitions.c.handed_over_at, now),
            )
            decision = current.decision_on(new_domain, department) if new_domain is not None else None
            if decision is not None:
                conn.execute(
                    feedback.insert().values(
                        petition_id=petition_id,
                        created_at=now,
                        actor=actor,
                        role=role,
                        decision=decision,
                        auto_routed=current.auto_routed,
                        masked_text=current.masked_text,
                        model_version=current.model_version,
                        predicted_domain=current.predicted_domain,
                        predicted_department=current.predicted_department,
                        previous_domain=current.domain,
                        previous_department=current.department,
                        corrected_domain=new_domain,
                        corrected_department=department,
                    )
                )
        return Routed(self.get(petition_id, now=now), correction, decision)

    def link(
        self,
        petition_id: int,
        case_id: int,
        *,
        actor: str,
        role: Role,
        note: str | None = None,
        now: datetime | None = None,
    ) -> PetitionRecord:
        """Record that `petition_id` repeats the existing case `case_id`; the history of both says so.

        Linking does not change either petition's status or queue: the clerk closes or routes the
        repeat as the office's rules say. Linking again to the same case changes nothing.
        """
        if petition_id == case_id:
            raise LinkRefused(petition_id, "self")
        now = now or utcnow()
        with self._write() as conn:
            # Both rows locked, in id order (no deadlock): two clerks linking A -> B and B -> A at once
            # would otherwise both pass the cycle check on PostgreSQL.
            loaded = {
                row_id: self._load(conn, row_id, now, with_history=False, for_update=True)
                for row_id in sorted((petition_id, case_id))
            }
            current, case = loaded[petition_id], loaded[case_id]
            if current.linked_case == case_id:
                return self.get(petition_id, now=now)
            if self._links_back(conn, case, petition_id):
                raise LinkRefused(petition_id, "cycle")
            conn.execute(
                update(petitions).where(petitions.c.id == petition_id).values(linked_case=case_id, updated_at=now)
            )
            for subject, details in (
                (current, {"case": case_id, "previous_case": current.linked_case}),
                (case, {"linked_item": petition_id}),
            ):
                self._log(
                    conn,
                    subject.id,
                    now,
                    actor,
                    role,
                    Action.LINKED,
                    subject.status,
                    subject.status,
                    subject.queue,
                    subject.queue,
                    note,
                    details,
                )
        return self.get(petition_id, now=now)

    @staticmethod
    def _links_back(conn: Connection, case: PetitionRecord, petition_id: int) -> bool:
        """Following the case's own links (each repeat points at its case) reaches `petition_id`: linking
        would close a loop of any length, not only A -> B -> A."""
        seen = {case.id}
        target = case.linked_case
        while target is not None and target not in seen:
            if target == petition_id:
                return True
            seen.add(target)
            target = conn.execute(select(petitions.c.linked_case).where(petitions.c.id == target)).scalar()
        return False

    def accept(
        self,
        petition_id: int,
        *,
        actor: str,
        role: Role,
        note: str | None = None,
        now: datetime | None = None,
        guard: Guard | None = None,
    ) -> PetitionRecord:
        """The department takes the petition into its work list: assigned to `actor` until closed or
        returned (no lease), the hand-over clock stops and the handling clock starts."""

        def values(current: PetitionRecord, now: datetime) -> dict[str, Any]:
            due = self.deadlines.handling_due(now)
            return {
                "accepted_at": now,
                "assignee": actor,
                "handling_due_at": due,
                "handed_over_at": func.coalesce(petitions.c.handed_over_at, now),
                "details": {"handling_due_at": due.isoformat(), "hand_over_late": now > current.due_at},
            }

        return self._act(petition_id, Action.ACCEPTED, actor, role, now, values, guard, note=note)

    def return_to_triage(
        self,
        petition_id: int,
        reason: str,
        *,
        actor: str,
        role: Role,
        now: datetime | None = None,
        guard: Guard | None = None,
    ) -> PetitionRecord:
        """The department sends a wrongly routed petition back to manual triage with its reason; the
        assignment and handling clock end, and the hand-over clock (from registration) runs again."""

        def values(current: PetitionRecord, now: datetime) -> dict[str, Any]:
            return {
                "returned_at": now,
                "accepted_at": None,
                "assignee": None,
                "handling_due_at": None,
                "extension_days": None,
                "extension_reason": None,
                "extended_at": None,
            }

        return self._act(
            petition_id, Action.RETURNED, actor, role, now, values, guard, to_queue=MANUAL_TRIAGE, note=reason
        )

    def add_note(
        self,
        petition_id: int,
        note: str,
        *,
        actor: str,
        role: Role,
        now: datetime | None = None,
        guard: Guard | None = None,
    ) -> PetitionRecord:
        return self._act(petition_id, Action.NOTED, actor, role, now, guard=guard, note=note)

    def extend(
        self,
        petition_id: int,
        days: int,
        reason: str,
        *,
        actor: str,
        role: Role,
        now: datetime | None = None,
        guard: Guard | None = None,
    ) -> PetitionRecord:
        """Move the handling deadline once, by at most `deadlines.max_extension_days` (ExtensionRefused)."""
        if not 1 <= days <= self.deadlines.max_extension_days:
            raise ExtensionRefused(petition_id, "too_long")

        def values(current: PetitionRecord, now: datetime) -> dict[str, Any]:
            if current.extension_days is not None:
                raise ExtensionRefused(petition_id, "used")
            assert current.handling_due_at is not None  # set on acceptance, the only way into ACCEPTED
            due = current.handling_due_at + timedelta(days=days)
            return {
                "extension_days": days,
                "extension_reason": mask_as_written(reason),
                "extended_at": now,
                "handling_due_at": due,
                "details": {"days": days, "handling_due_at": due.isoformat()},
            }

        return self._act(petition_id, Action.EXTENDED, actor, role, now, values, guard, note=reason)

    def close(
        self,
        petition_id: int,
        resolution: str,
        *,
        actor: str,
        role: Role,
        reply_summary: str | None = None,
        now: datetime | None = None,
        guard: Guard | None = None,
    ) -> PetitionRecord:
        """Close with the resolution (for the office) and an optional reply summary (for the petitioner)."""

        def values(current: PetitionRecord, now: datetime) -> dict[str, Any]:
            return {
                "resolution": mask_as_written(resolution),
                "reply_summary": None if reply_summary is None else mask_as_written(reply_summary),
                "closed_at": now,
                "closed_by": actor,
            }

        return self._act(petition_id, Action.CLOSED, actor, role, now, values, guard)
