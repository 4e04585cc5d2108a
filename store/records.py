"""Typed records going into and coming out of the store (frozen dataclasses, no bare row dicts)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from model.classifier import Prediction
from model.flags import Flag
from store.rules import FlagsDocument, PredictionDocument
from store.vocabulary import Action, Channel, Decision, Role, SortOrder, Status


@dataclass(frozen=True)
class Submission:
    """One petition to store; `prediction` is what the model said about `text`."""

    text: str
    channel: Channel
    prediction: Prediction
    model_version: str
    received_at: datetime | None = None
    external_id: str | None = None
    idempotency_key: str | None = None
    actor: str = "system"
    role: Role = Role.SYSTEM
    petitioner: Petitioner | None = None
    petitioner_key: str | None = None  # keyed hash of the contact, never the contact itself
    repeat_of: int | None = None


@dataclass(frozen=True)
class Petitioner:
    """Who petitioned: personal data, stored as given, shown masked to a department before hand-over,
    never logged. `headcount` above 1 marks a collective petition (集体访)."""

    name: str | None = None
    contact: str | None = None
    headcount: int | None = None
    address: str | None = None


@dataclass(frozen=True)
class Submitted:
    petition_id: int
    created: bool  # False: an earlier petition with the same external id / idempotency key


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    petition_id: int
    at: datetime
    actor: str
    role: Role
    action: Action
    from_status: Status | None
    to_status: Status | None
    from_queue: str | None
    to_queue: str | None
    note: str | None
    details: dict[str, Any]

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> HistoryEntry:
        return cls(
            id=row["id"],
            petition_id=row["petition_id"],
            at=row["at"],
            actor=row["actor"],
            role=Role(row["role"]),
            action=Action(row["action"]),
            from_status=_status(row["from_status"]),
            to_status=_status(row["to_status"]),
            from_queue=row["from_queue"],
            to_queue=row["to_queue"],
            note=row["note"],
            details=row["details"] or {},
        )


@dataclass(frozen=True)
class Lease:
    owner: str
    claimed_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class PetitionRecord:
    """A stored petition as seen at the moment it was read.

    `status` and the overdue flags are evaluated by the database at read time (see store/rules.py):
    a claim whose lease has run out reads as queued (or routed) again. `due_at` is the hand-over
    deadline, `handling_due_at` the handling deadline (set on acceptance, extension included).
    """

    id: int
    external_id: str | None
    idempotency_key: str | None
    text: str
    masked_text: str
    channel: Channel
    received_at: datetime
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    created_by: str
    status: Status
    overdue: bool
    hand_over_overdue: bool
    handling_overdue: bool
    queue: str
    model_version: str
    predicted_domain: str
    domain_confidence: float
    predicted_department: str | None
    department_confidence: float | None
    needs_review: bool
    prediction: PredictionDocument
    domain: str | None
    department: str | None
    routed_at: datetime | None
    routed_by: str | None
    handed_over_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    claimed_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    resolution: str | None
    petitioner_name: str | None = None
    petitioner_contact: str | None = None
    headcount: int | None = None
    address: str | None = None
    accepted_at: datetime | None = None
    assignee: str | None = None
    handling_due_at: datetime | None = None
    extension_days: int | None = None
    extension_reason: str | None = None
    extended_at: datetime | None = None
    returned_at: datetime | None = None
    reply_summary: str | None = None
    history: tuple[HistoryEntry, ...] = field(default=())
    repeat_of: int | None = None
    linked_case: int | None = None
    flags: FlagsDocument | None = None  # the flag model's decisions at intake (None: the version had none)

    @property
    def lease(self) -> Lease | None:
        """The live lease, if the petition is claimed right now."""
        if self.status != Status.CLAIMED or self.lease_owner is None:
            return None
        assert self.claimed_at is not None and self.lease_expires_at is not None
        return Lease(self.lease_owner, self.claimed_at, self.lease_expires_at)

    @property
    def auto_routed(self) -> bool:
        """The suggestion went straight to a department queue, without review."""
        return not self.needs_review and self.predicted_department is not None

    def decision_on(self, domain: str, department: str) -> Decision | None:
        """What routing to (domain, department) now means for the suggestion; None when it changes nothing."""
        if self.routed_at is None and not self.auto_routed:  # the first decision on a suggestion under review
            suggested = (domain, department) == (self.predicted_domain, self.predicted_department)
            return Decision.ACCEPTED if suggested else Decision.CORRECTED
        if (domain, department) != (self.domain, self.department):
            return Decision.REROUTED
        return Decision.ACCEPTED if self.routed_at is None else None  # confirming an automatic route

    @classmethod
    def from_row(cls, row: Mapping[Any, Any], history: tuple[HistoryEntry, ...] = ()) -> PetitionRecord:
        """From a row selected with the `effective_status` and overdue columns (see QueueStore)."""
        values = {name: row[name] for name in _PETITION_COLUMNS}
        values.update(
            channel=Channel(row["channel"]),
            status=Status(row["effective_status"]),
            hand_over_overdue=bool(row["is_hand_over_overdue"]),
            handling_overdue=bool(row["is_handling_overdue"]),
            overdue=bool(row["is_hand_over_overdue"]) or bool(row["is_handling_overdue"]),
            needs_review=bool(row["needs_review"]),
            history=history,
        )
        return cls(**values)


@dataclass(frozen=True)
class RouteDecision:
    """A decision on a suggestion (accepted, corrected, re-routed): one labelled example (masked text)."""

    id: int
    petition_id: int
    created_at: datetime
    actor: str
    role: Role | None
    decision: Decision
    auto_routed: bool
    masked_text: str
    model_version: str
    predicted_domain: str
    predicted_department: str | None
    previous_domain: str | None
    previous_department: str | None
    corrected_domain: str  # the route decided (for an acceptance, the suggestion itself)
    corrected_department: str

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> RouteDecision:
        values = {item.name: row[item.name] for item in fields(cls)}
        values.update(
            role=None if row["role"] is None else Role(row["role"]),
            decision=Decision(row["decision"]),
            auto_routed=bool(row["auto_routed"]),
        )
        return cls(**values)


@dataclass(frozen=True)
class Routed:
    """The outcome of a route: the petition, whether the route differs from the suggestion, and the decision
    recorded as feedback (None when the route was confirmed again and nothing changed)."""

    petition: PetitionRecord
    correction: bool
    decision: Decision | None


@dataclass(frozen=True)
class SuggestionCount:
    """Petitions registered in one week with one suggested department, by whether they needed review."""

    week: int  # index of the week's start among the starts asked for
    department: str | None  # the suggested department; None when the model had no department head
    needs_review: bool
    count: int


@dataclass(frozen=True)
class DecisionCount:
    """Decisions of one kind taken in one week on suggestions of one department, by the route decided."""

    week: int
    suggested: str | None  # the model's suggested department
    decided: str  # the department decided (for an acceptance, the suggestion itself)
    decision: Decision
    auto_routed: bool  # the suggestion had gone straight to the department, without review
    count: int


@dataclass(frozen=True)
class PetitionBrief:
    """What a list of related petitions shows about each: enough to judge and open it."""

    id: int
    status: Status
    queue: str
    received_at: datetime
    petitioner_key: str | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> PetitionBrief:
        return cls(
            id=row["id"],
            status=Status(row["effective_status"]),
            queue=row["queue"],
            received_at=row["received_at"],
            petitioner_key=row["petitioner_key"],
        )


@dataclass(frozen=True)
class RecentPetition:
    """What hot-topic clustering reads of one petition (masked text only)."""

    id: int
    masked_text: str
    received_at: datetime
    petitioner_key: str | None
    domain: str | None
    department: str | None
    status: Status
    queue: str


@dataclass(frozen=True)
class QueueCounts:
    """Open petitions of one queue by effective status, plus how many are overdue on each clock."""

    queued: int = 0
    routed: int = 0
    claimed: int = 0
    accepted: int = 0
    returned: int = 0
    overdue: int = 0  # on either clock
    hand_over_overdue: int = 0
    handling_overdue: int = 0
    open: int = 0
    litigation: int = 0  # open petitions flagged 涉法涉诉
    collective: int = 0  # open petitions flagged 集体访


@dataclass(frozen=True)
class PetitionQuery:
    """A search over stored petitions; every given criterion must hold.

    `text` matches the masked text (the query is masked the same way first), part of the external
    id, or the number. `queues` empty means every queue; `statuses` empty means every open one
    (closed ones only when asked for). Received dates are inclusive bounds.
    """

    text: str | None = None
    queues: tuple[str, ...] = ()
    statuses: tuple[Status, ...] = ()
    channel: Channel | None = None
    overdue: bool | None = None
    flag: Flag | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    sort: SortOrder = SortOrder.DUE
    limit: int = 50
    offset: int = 0


def _status(value: str | None) -> Status | None:
    return None if value is None else Status(value)


# Columns copied as they are; channel, status and overdue are converted, history is loaded separately.
_PETITION_COLUMNS = tuple(
    item.name
    for item in fields(PetitionRecord)
    if item.name not in {"status", "overdue", "hand_over_overdue", "handling_overdue", "history"}
)
