"""Repeat petitions: link an item to the existing case it repeats (thin; logic in service/similar.py)."""

from __future__ import annotations

from fastapi import APIRouter

from service import similar
from service.api.deps import RoutingUser, SettingsDep, SimilarDep, StoreDep, TaxonomyDep
from service.api.routes.petitions import ERRORS, PetitionId
from service.schemas import LinkIn, PetitionOut

router = APIRouter(prefix="/v1", tags=["petitions 信访件"])


@router.post(
    "/petitions/{petition_id}/link",
    response_model=PetitionOut,
    responses=ERRORS,
    summary="关联到已有案件（重复信访）/ Link a repeat petition to the existing case",
)
def link_petition(
    petition_id: PetitionId,
    body: LinkIn,
    store: StoreDep,
    index: SimilarDep,
    settings: SettingsDep,
    taxonomy: TaxonomyDep,
    principal: RoutingUser,
) -> PetitionOut:
    """两件的处理记录都会记下这次关联（谁、何时、关联到哪一件）。状态和队列不变。/ Both histories record the link
    (who, when, which). Neither petition's status or queue changes; linking again to the same case is a no-op."""
    return similar.link(store, index, settings, taxonomy, principal, petition_id, body.case_id, body.note)
