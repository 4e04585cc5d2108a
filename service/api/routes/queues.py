"""Routing queues: counts, paginated items (oldest due first), and the leased claim. Thin over
service/queues.py."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query, Response

from service import queues
from service.api.deps import CurrentUser, SettingsDep, StoreDep, TaxonomyDep
from service.api.routes.petitions import ERRORS
from service.schemas import ClaimIn, PetitionOut, QueuePageOut, QueuesOut
from store import Status

router = APIRouter(prefix="/v1/queues", tags=["queues 队列"])

QueueName = Annotated[
    str,
    Path(
        max_length=64,
        description="队列：部门编号或 manual_triage / department id or manual_triage",
        examples=["housing"],
    ),
]
# Closed items are not in any queue, so the filter offers only the open statuses.
OpenStatus = Literal[Status.QUEUED, Status.CLAIMED, Status.ROUTED, Status.ACCEPTED, Status.RETURNED]


@router.get("", response_model=QueuesOut, responses=ERRORS, summary="各队列统计 / Per-queue counts")
def list_queues(store: StoreDep, taxonomy: TaxonomyDep, principal: CurrentUser) -> QueuesOut:
    """待领取、已确认、已领取、超期件数；部门密钥只看到本部门队列。/ Queued, routed, claimed and overdue
    counts; a department key sees only its own queue."""
    return queues.counts(store, taxonomy, principal)


@router.get(
    "/{queue}",
    response_model=QueuePageOut,
    responses=ERRORS,
    summary="队列中的件（按期限排序，分页）/ Items of a queue, oldest due first, paginated",
)
def queue_items(
    queue: QueueName,
    store: StoreDep,
    taxonomy: TaxonomyDep,
    principal: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=200, description="每页件数 / page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="跳过件数 / items to skip")] = 0,
    status: Annotated[OpenStatus | None, Query(description="按状态筛选 / filter by status")] = None,
) -> QueuePageOut:
    return queues.page(store, taxonomy, principal, queue, limit, offset, status)


@router.post(
    "/{queue}/claim",
    response_model=PetitionOut,
    responses={**ERRORS, 204: {"description": "队列为空 / the queue is empty"}},
    summary="领取下一件（带租约）/ Claim the next item with a lease",
)
def claim(
    queue: QueueName,
    store: StoreDep,
    taxonomy: TaxonomyDep,
    settings: SettingsDep,
    principal: CurrentUser,
    body: Annotated[ClaimIn | None, Body()] = None,
) -> PetitionOut | Response:
    """原子地把期限最近的一件交给领取人；租约到期未办结则退回队列，两个领取人不会拿到同一件。部门只能领取本部门
    队列，登记员只能领取人工分流队列。/ Atomically hands the item due soonest to the caller with a lease;
    it returns to the queue if the lease expires before it is routed or closed. Two workers never get
    the same item. Departments claim from their own queue, clerks from manual_triage, admins anywhere."""
    request = body or ClaimIn()
    petition = queues.claim(store, taxonomy, settings, principal, queue, request.lease_seconds, request.worker)
    return Response(status_code=204) if petition is None else petition
