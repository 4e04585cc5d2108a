"""Turn model predictions and stored rows into response models, and decide what a caller may see.

Raw text is shown to clerks and admins, and to a department once the petition has been handed
to it (a clerk confirmed the route, or the department claimed it). Before that a department
sees only the masked text: a suggested route may still be wrong, and personal data should not
reach the wrong department.
"""

from __future__ import annotations

from typing import Any

from model.classifier import HeadPrediction, Prediction
from model.taxonomy import Taxonomy
from service.auth import Principal
from service.db import Petition, prediction_document
from service.schemas import (
    HeadOut,
    HistoryOut,
    LabelScore,
    LeaseOut,
    PetitionOut,
    PetitionSummary,
    PredictionOut,
    RouteOut,
    SubmitResponse,
    Term,
)

PREVIEW_CHARS = 80


def head_out(taxonomy: Taxonomy, name: str, head: dict[str, Any], threshold: float | None = None) -> HeadOut:
    return HeadOut(
        label=head["label"], name=taxonomy.name(head["label"], name), confidence=head["confidence"],
        needs_review=head["needs_review"], threshold=threshold,
        ranking=[LabelScore(label=label, name=taxonomy.name(label, name), confidence=probability)
                 for label, probability in head["ranking"]],
    )


def prediction_out(taxonomy: Taxonomy, document: dict[str, Any], model_version: str,
                   thresholds: dict[str, float] | None = None) -> PredictionOut:
    heads = document["heads"]
    thresholds = thresholds or {}
    department = heads.get("department")
    return PredictionOut(
        model_version=model_version,
        domain=head_out(taxonomy, "domain", heads["domain"], thresholds.get("domain")),
        department=(head_out(taxonomy, "department", department, thresholds.get("department"))
                    if department else None),
        needs_review=document["needs_review"],
        explanation=[Term(term=term, weight=weight) for term, weight in document["explanation"]],
    )


def live_prediction_out(taxonomy: Taxonomy, prediction: Prediction, model_version: str,
                        thresholds: dict[str, float]) -> PredictionOut:
    return prediction_out(taxonomy, prediction_document(prediction), model_version, thresholds)


def may_see_text(principal: Principal, petition: Petition) -> bool:
    if principal.role in ("clerk", "admin"):
        return True
    return petition.queue == principal.department and petition["handed_over_at"] is not None


def lease_out(petition: Petition) -> LeaseOut | None:
    if petition.status != "claimed":
        return None
    return LeaseOut(owner=petition["lease_owner"], claimed_at=petition["claimed_at"],
                    expires_at=petition["lease_expires_at"])


def petition_out(taxonomy: Taxonomy, principal: Principal, petition: Petition) -> PetitionOut:
    row = petition.row
    visible = may_see_text(principal, petition)
    return PetitionOut(
        id=row["id"], external_id=row["external_id"], channel=row["channel"],
        received_at=row["received_at"], due_at=row["due_at"], overdue=petition.overdue,
        status=petition.status, queue=row["queue"], queue_name=queue_name(taxonomy, row["queue"]),
        text_visible=visible, text=row["text"] if visible else None, masked_text=row["masked_text"],
        prediction=prediction_out(taxonomy, row["prediction"], row["model_version"]),
        route=RouteOut(domain=row["domain"], department=row["department"], routed_at=row["routed_at"],
                       routed_by=row["routed_by"], handed_over_at=row["handed_over_at"]),
        lease=lease_out(petition),
        resolution=row["resolution"] if visible else None,
        closed_at=row["closed_at"], closed_by=row["closed_by"],
        created_at=row["created_at"], created_by=row["created_by"], updated_at=row["updated_at"],
        history=[HistoryOut(**{key: item[key] for key in HistoryOut.model_fields}) for item in petition.history],
    )


def summary_out(petition: Petition) -> PetitionSummary:
    row = petition.row
    return PetitionSummary(
        id=row["id"], external_id=row["external_id"], channel=row["channel"], received_at=row["received_at"],
        due_at=row["due_at"], overdue=petition.overdue, status=petition.status, queue=row["queue"],
        domain=row["domain"], department=row["department"], needs_review=row["needs_review"],
        domain_confidence=row["domain_confidence"], department_confidence=row["department_confidence"],
        preview=row["masked_text"][:PREVIEW_CHARS], lease=lease_out(petition),
    )


def submit_out(taxonomy: Taxonomy, petition: Petition, created: bool) -> SubmitResponse:
    row = petition.row
    return SubmitResponse(
        id=row["id"], created=created, external_id=row["external_id"], status=petition.status,
        queue=row["queue"], received_at=row["received_at"], due_at=row["due_at"], overdue=petition.overdue,
        suggestion=prediction_out(taxonomy, row["prediction"], row["model_version"]),
    )


def queue_name(taxonomy: Taxonomy, queue: str) -> str:
    return "人工分流" if queue == "manual_triage" else taxonomy.name(queue, "department")


def head_summary(head: HeadPrediction) -> dict[str, Any]:
    """Log fields for one head: label and confidence, never text."""
    return {"label": head.label, "confidence": head.confidence}
