"""Turn predictions and store records into response schemas, and decide what a caller may see.

Raw text, the petitioner's name, contact and address, the resolution and reply are shown to
clerks and admins, and to a department once a clerk confirmed the route to it (claiming or
accepting a suggested item does not count). Before that a department sees only the masked text
and masked petitioner: a suggested route may still be wrong, and personal data should not reach
the wrong department.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from model.classifier import HeadPrediction, Prediction
from model.taxonomy import Taxonomy
from model.text import mask_contact, mask_name
from service.auth import Permission, Principal
from service.schemas import (
    ExtensionOut,
    FlagOut,
    HeadOut,
    HistoryOut,
    LabelScoreOut,
    LeaseOut,
    PetitionerOut,
    PetitionOut,
    PetitionSummaryOut,
    PredictionOut,
    RouteOut,
    SimilarOut,
    SubmitOut,
    TermOut,
)
from store import (
    MANUAL_TRIAGE,
    MANUAL_TRIAGE_NAME,
    FlagsDocument,
    Lease,
    PetitionRecord,
    PredictionDocument,
    flags_document,
    prediction_document,
    raised_flags,
)
from store.rules import HeadDocument

PREVIEW_CHARS = 80


def head_out(taxonomy: Taxonomy, name: str, head: HeadDocument, threshold: float | None = None) -> HeadOut:
    return HeadOut(
        label=head["label"],
        name=taxonomy.name(head["label"], name),
        confidence=head["confidence"],
        needs_review=head["needs_review"],
        threshold=threshold,
        ranking=[
            LabelScoreOut(label=label, name=taxonomy.name(label, name), confidence=probability)
            for label, probability in head["ranking"]
        ],
    )


def flags_out(document: FlagsDocument | None) -> list[FlagOut]:
    """The raised flags with their Chinese labels and, for litigation, the hint to guide to legal channels."""
    if not document:
        return []
    return [
        FlagOut(flag=flag, label=flag.label, probability=document[flag.value]["probability"], hint=flag.hint)
        for flag in raised_flags(document)
    ]


def prediction_out(
    taxonomy: Taxonomy,
    document: PredictionDocument,
    model_version: str,
    thresholds: dict[str, float] | None = None,
    flags: FlagsDocument | None = None,
) -> PredictionOut:
    heads = document["heads"]
    thresholds = thresholds or {}
    department = heads.get("department")
    return PredictionOut(
        model_version=model_version,
        domain=head_out(taxonomy, "domain", heads["domain"], thresholds.get("domain")),
        department=(head_out(taxonomy, "department", department, thresholds.get("department")) if department else None),
        needs_review=document["needs_review"],
        explanation=[TermOut(term=term, weight=weight) for term, weight in document["explanation"]],
        flags=flags_out(flags),
    )


def live_prediction_out(
    taxonomy: Taxonomy, prediction: Prediction, model_version: str, thresholds: dict[str, float]
) -> PredictionOut:
    return prediction_out(
        taxonomy, prediction_document(prediction), model_version, thresholds, flags_document(prediction)
    )


def handed_to(principal: Principal, petition: PetitionRecord) -> bool:
    """A clerk confirmed the route to the caller's department. Claiming or accepting a suggested item is
    not enough: the suggestion may be wrong, and the text would then have reached the wrong department."""
    return petition.queue == principal.department and petition.routed_at is not None


def may_see_text(principal: Principal, petition: PetitionRecord) -> bool:
    return principal.can(Permission.SEE_TEXT) or handed_to(principal, petition)


def lease_out(lease: Lease | None) -> LeaseOut | None:
    if lease is None:
        return None
    return LeaseOut(owner=lease.owner, claimed_at=lease.claimed_at, expires_at=lease.expires_at)


def _record_fields(petition: PetitionRecord, schema: type[BaseModel], **computed: Any) -> dict[str, Any]:
    """The schema's fields taken from the record by name, plus those computed for this caller."""
    values = {name: getattr(petition, name) for name in schema.model_fields if name not in computed}
    return values | computed


def petitioner_out(petition: PetitionRecord, visible: bool) -> PetitionerOut:
    """The petitioner as this caller may see them: in full, or with name and contact masked and no address."""
    name, contact = petition.petitioner_name, petition.petitioner_contact
    if visible:
        return PetitionerOut(
            masked=False, name=name, contact=contact, headcount=petition.headcount, address=petition.address
        )
    return PetitionerOut(
        masked=True,
        name=mask_name(name) if name else None,
        contact=mask_contact(contact) if contact else None,
        headcount=petition.headcount,
        address=None,
    )


def extension_out(petition: PetitionRecord) -> ExtensionOut | None:
    if petition.extension_days is None:
        return None
    return ExtensionOut(
        days=petition.extension_days, reason=petition.extension_reason, extended_at=petition.extended_at
    )


def petition_out(
    taxonomy: Taxonomy, principal: Principal, petition: PetitionRecord, similar: Sequence[SimilarOut] = ()
) -> PetitionOut:
    visible = may_see_text(principal, petition)
    return PetitionOut(
        **_record_fields(
            petition,
            PetitionOut,
            similar=list(similar),
            queue_name=queue_name(taxonomy, petition.queue),
            text_visible=visible,
            text=petition.text if visible else None,
            resolution=petition.resolution if visible else None,
            reply_summary=petition.reply_summary if visible else None,
            petitioner=petitioner_out(petition, visible),
            extension=extension_out(petition),
            prediction=prediction_out(taxonomy, petition.prediction, petition.model_version, flags=petition.flags),
            route=RouteOut(**_record_fields(petition, RouteOut)),
            lease=lease_out(petition.lease),
            history=[HistoryOut.model_validate(entry, from_attributes=True) for entry in petition.history],
        )
    )


def summary_out(petition: PetitionRecord) -> PetitionSummaryOut:
    return PetitionSummaryOut(
        **_record_fields(
            petition,
            PetitionSummaryOut,
            preview=petition.masked_text[:PREVIEW_CHARS],
            lease=lease_out(petition.lease),
            flags=raised_flags(petition.flags),
        )
    )


def submit_out(
    taxonomy: Taxonomy, petition: PetitionRecord, created: bool, similar: Sequence[SimilarOut] = ()
) -> SubmitOut:
    return SubmitOut(
        **_record_fields(
            petition,
            SubmitOut,
            similar=list(similar),
            created=created,
            suggestion=prediction_out(taxonomy, petition.prediction, petition.model_version, flags=petition.flags),
        )
    )


def queue_name(taxonomy: Taxonomy, queue: str) -> str:
    return MANUAL_TRIAGE_NAME if queue == MANUAL_TRIAGE else taxonomy.name(queue, "department")


def head_summary(head: HeadPrediction) -> dict[str, Any]:
    """Log fields for one head: label and confidence, never text."""
    return {"label": head.label, "confidence": head.confidence}
