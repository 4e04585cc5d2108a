"""Routing queues: counts, paginated items (oldest due first), and the leased claim."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from model.taxonomy import Taxonomy
from service.api.deps import get_settings, get_store, get_taxonomy
from service.api.petitions import ERRORS
from service.api.views import petition_out, queue_name, summary_out
from service.auth import Principal, check_queue_access, current_principal, forbidden
from service.db import MANUAL_TRIAGE, QueueStore
from service.errors import ApiError
from service.logging import log_event
from service.schemas import ClaimRequest, PetitionOut, QueueCounts, QueuePage, QueuesResponse
from service.settings import Settings

logger = logging.getLogger("triage.api")
router = APIRouter(prefix="/v1/queues", tags=["queues 队列"])

QueueName = Annotated[str, Path(max_length=64, description="队列：部门编号或 manual_triage / department id or "
                                                          "manual_triage", examples=["housing"])]


def known_queue(store: QueueStore, queue: str) -> str:
    if queue not in store.queues:
        raise ApiError(404, "unknown_queue", f"队列不存在：{queue}", f"no such queue: {queue}",
                       {"known": list(store.queues)})
    return queue


@router.get("", response_model=QueuesResponse, responses=ERRORS,
            summary="各队列统计 / Per-queue counts")
def list_queues(
    store: Annotated[QueueStore, Depends(get_store)], taxonomy: Annotated[Taxonomy, Depends(get_taxonomy)],
    principal: Annotated[Principal, Depends(current_principal)],
) -> QueuesResponse:
    """待领取、已确认、已领取、超期件数；部门密钥只看到本部门队列。/ Queued, routed, claimed and overdue
    counts; a department key sees only its own queue."""
    counts = store.queue_counts()
    return QueuesResponse(queues=[
        QueueCounts(queue=queue, name=queue_name(taxonomy, queue), **values)
        for queue, values in counts.items() if principal.may_access_queue(queue)
    ])


@router.get("/{queue}", response_model=QueuePage, responses=ERRORS,
            summary="队列中的件（按期限排序，分页）/ Items of a queue, oldest due first, paginated")
def queue_items(
    queue: QueueName, store: Annotated[QueueStore, Depends(get_store)],
    taxonomy: Annotated[Taxonomy, Depends(get_taxonomy)],
    principal: Annotated[Principal, Depends(current_principal)],
    limit: Annotated[int, Query(ge=1, le=200, description="每页件数 / page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="跳过件数 / items to skip")] = 0,
    status: Annotated[Literal["queued", "claimed", "routed"] | None,
                      Query(description="按状态筛选 / filter by status")] = None,
) -> QueuePage:
    known_queue(store, queue)
    check_queue_access(principal, queue)
    items, total = store.list_queue(queue, limit=limit, offset=offset, status=status)
    return QueuePage(queue=queue, name=queue_name(taxonomy, queue), total=total, limit=limit, offset=offset,
                     items=[summary_out(item) for item in items])


@router.post("/{queue}/claim", response_model=PetitionOut,
             responses={**ERRORS, 204: {"description": "队列为空 / the queue is empty"}},
             summary="领取下一件（带租约）/ Claim the next item with a lease")
def claim(
    queue: QueueName, store: Annotated[QueueStore, Depends(get_store)],
    taxonomy: Annotated[Taxonomy, Depends(get_taxonomy)], settings: Annotated[Settings, Depends(get_settings)],
    principal: Annotated[Principal, Depends(current_principal)],
    body: Annotated[ClaimRequest | None, Body()] = None,
) -> PetitionOut | Response:
    """原子地把期限最近的一件交给领取人；租约到期未办结则退回队列，两个领取人不会拿到同一件。部门只能领取本部门
    队列，登记员只能领取人工分流队列。/ Atomically hands the item due soonest to the caller with a lease;
    it returns to the queue if the lease expires before it is routed or closed. Two workers never get
    the same item. Departments claim from their own queue, clerks from manual_triage, admins anywhere."""
    known_queue(store, queue)
    check_queue_access(principal, queue)
    if principal.role == "clerk" and queue != MANUAL_TRIAGE:
        raise forbidden("登记员只能领取人工分流队列", "clerks claim only from manual_triage")
    request = body or ClaimRequest()
    lease = min(request.lease_seconds or settings.lease_seconds, settings.max_lease_seconds)
    worker = principal.name if request.worker is None else f"{principal.name}/{request.worker}"
    petition = store.claim(queue, worker, lease_seconds=lease, role=principal.role)
    if petition is None:
        return Response(status_code=204)
    log_event(logger, logging.INFO, "queue.claimed", petition_id=petition.id, queue=queue, worker=worker,
              lease_seconds=lease)
    return petition_out(taxonomy, principal, petition)  # type: ignore[arg-type]
