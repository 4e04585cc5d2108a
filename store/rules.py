"""The routing rules, each written once: where a prediction goes, when a lease has run out, when a
petition is due on each clock, what is overdue (one rule for both clocks), what can be claimed.

The time rules are SQL expressions evaluated by the database both when counting and when reading
a single row (the store selects them as extra columns), so Python never re-implements them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy import BindParameter, ColumnElement, and_, case, or_

from model.classifier import Prediction
from model.flags import Flag
from store.schema import petitions
from store.vocabulary import MANUAL_TRIAGE, Action, Clock, Status
from store.workflow import TRANSITIONS

# A moment in the rules' SQL: a value, or a bound parameter filled in at execution (a statement built once).
Instant = datetime | BindParameter[datetime]


class HeadDocument(TypedDict):
    label: str
    confidence: float
    needs_review: bool
    ranking: list[list[Any]]  # [label, probability] pairs, best first


class PredictionDocument(TypedDict):
    """The model's suggestion as stored in `petitions.prediction` (JSON)."""

    heads: dict[str, HeadDocument]
    needs_review: bool
    explanation: list[list[Any]]  # [term, weight] pairs


class FlagDocument(TypedDict):
    flagged: bool
    probability: float


# `petitions.flags` (JSON): each flag's decision and probability, by flag id; NULL when no flag model ran.
FlagsDocument = dict[str, FlagDocument]


def flags_document(prediction: Prediction) -> FlagsDocument | None:
    if not prediction.flags:
        return None
    return {
        name: {"flagged": score.flagged, "probability": score.probability} for name, score in prediction.flags.items()
    }


def raised_flags(document: FlagsDocument | None) -> list[Flag]:
    """The flags a stored document raises, in the vocabulary's order (ids a newer model may add are skipped)."""
    if not document:
        return []
    return [flag for flag in Flag if flag.value in document and document[flag.value]["flagged"]]


def flagged(flag: Flag) -> ColumnElement[bool]:
    """SQL: the petition's stored flags raise `flag` (JSON path; SQLite and PostgreSQL)."""
    return petitions.c.flags[(flag.value, "flagged")].as_boolean().is_(True)


def suggested_queue(prediction: Prediction, queues: Iterable[str]) -> str:
    """The department's queue when the model is confident about both heads, else manual triage."""
    department = prediction.heads.get("department")
    if prediction.needs_review or department is None or department.label not in set(queues):
        return MANUAL_TRIAGE
    return department.label


def prediction_document(prediction: Prediction) -> PredictionDocument:
    return {
        "heads": {
            name: {
                "label": head.label,
                "confidence": head.confidence,
                "needs_review": head.needs_review,
                "ranking": [[label, probability] for label, probability in head.ranking],
            }
            for name, head in prediction.heads.items()
        },
        "needs_review": prediction.needs_review or "department" not in prediction.heads,
        "explanation": [[term, weight] for term, weight in prediction.explanation],
    }


@dataclass(frozen=True)
class Deadlines:
    """The two clocks of the 信访工作条例, in calendar days (weekends and holidays count).

    Hand-over: registration (receipt) + `hand_over_days`; it stops when the responsible department
    accepts the petition into its work list. Handling: acceptance + `handling_days`, moved once by
    an extension of at most `max_extension_days`; it stops when the petition is closed.
    """

    hand_over_days: int = 15
    handling_days: int = 60
    max_extension_days: int = 30

    def hand_over_due(self, received_at: datetime) -> datetime:
        return received_at + timedelta(days=self.hand_over_days)

    def handling_due(self, accepted_at: datetime) -> datetime:
        return accepted_at + timedelta(days=self.handling_days)


def lease_expired(now: Instant) -> ColumnElement[bool]:
    """A claim whose lease ran out counts as back in the queue (no reaper process needed)."""
    return and_(petitions.c.status == Status.CLAIMED, petitions.c.lease_expires_at <= now)


def effective_status(now: Instant) -> ColumnElement[str]:
    """The status as seen at `now`: an expired claim is back where it was before it was claimed
    (returned if a department returned it since the last route, routed if a clerk routed it, else queued)."""
    returned_last = and_(
        petitions.c.returned_at.is_not(None),
        or_(petitions.c.routed_at.is_(None), petitions.c.returned_at > petitions.c.routed_at),
    )
    back_in_queue = case(
        (returned_last, Status.RETURNED.value),
        (petitions.c.routed_at.is_not(None), Status.ROUTED.value),
        else_=Status.QUEUED.value,
    )
    return case((lease_expired(now), back_in_queue), else_=petitions.c.status)


def past_due(due: ColumnElement[Any], stopped: ColumnElement[Any], now: Instant) -> ColumnElement[bool]:
    """The one overdue rule, for either clock: its deadline has passed, the clock was never stopped,
    and the petition is still open."""
    return and_(due.is_not(None), due < now, stopped.is_(None), petitions.c.status != Status.CLOSED)


def clock_overdue(clock: Clock, now: Instant) -> ColumnElement[bool]:
    """Hand-over: past `due_at` and not yet accepted by a department (routing or a lease does not
    stop it). Handling: past `handling_due_at` (extension included) and not closed."""
    if clock == Clock.HAND_OVER:
        return past_due(petitions.c.due_at, petitions.c.accepted_at, now)
    return past_due(petitions.c.handling_due_at, petitions.c.closed_at, now)


def overdue(now: Instant) -> ColumnElement[bool]:
    """Overdue on either clock."""
    return or_(*(clock_overdue(clock, now) for clock in Clock))


def next_due() -> ColumnElement[Any]:
    """The deadline that matters now: the handling due date once accepted, else the hand-over due date."""
    return case((petitions.c.accepted_at.is_not(None), petitions.c.handling_due_at), else_=petitions.c.due_at)


def claimable(queue: str, now: datetime) -> ColumnElement[bool]:
    """In `queue` and in a status a claim may start from (store/workflow.py), or claimed with an expired lease."""
    return and_(
        petitions.c.queue == queue,
        or_(petitions.c.status.in_(sorted(TRANSITIONS[Action.CLAIMED].sources)), lease_expired(now)),
    )


def hands_over(queue: str) -> bool:
    """Claiming from a department queue hands the petition to that department (it may then see the text)."""
    return queue != MANUAL_TRIAGE
