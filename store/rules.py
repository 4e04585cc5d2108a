"""The routing rules, each written once: where a prediction goes, when a lease has run out, what is
overdue, when a petition is due, what can be claimed.

The time rules are SQL expressions evaluated by the database both when counting and when reading
a single row (the store selects them as extra columns), so Python never re-implements them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy import ColumnElement, and_, case, or_

from model.classifier import Prediction
from store.schema import petitions
from store.vocabulary import MANUAL_TRIAGE, Status


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


def due_at(received_at: datetime, due_days: int) -> datetime:
    """Hand-over deadline: the responsible department must have it within `due_days` of receipt."""
    return received_at + timedelta(days=due_days)


def lease_expired(now: datetime) -> ColumnElement[bool]:
    """A claim whose lease ran out counts as back in the queue (no reaper process needed)."""
    return and_(petitions.c.status == Status.CLAIMED, petitions.c.lease_expires_at <= now)


def effective_status(now: datetime) -> ColumnElement[str]:
    """The status as seen at `now`: an expired claim is routed again if a clerk routed it, else queued."""
    back_in_queue = case((petitions.c.routed_at.is_not(None), Status.ROUTED.value), else_=Status.QUEUED.value)
    return case((lease_expired(now), back_in_queue), else_=petitions.c.status)


def overdue(now: datetime) -> ColumnElement[bool]:
    """Past due, not closed, and never handed to the responsible department."""
    return and_(petitions.c.due_at < now, petitions.c.handed_over_at.is_(None), petitions.c.status != Status.CLOSED)


def claimable(queue: str, now: datetime) -> ColumnElement[bool]:
    """Queued or routed in `queue`, or claimed there with an expired lease."""
    return and_(
        petitions.c.queue == queue,
        or_(petitions.c.status.in_((Status.QUEUED, Status.ROUTED)), lease_expired(now)),
    )


def hands_over(queue: str) -> bool:
    """Claiming from a department queue hands the petition to that department (stops the overdue clock)."""
    return queue != MANUAL_TRIAGE
