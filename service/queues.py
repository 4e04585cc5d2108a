"""The queue service layer: per-queue counts, a page of a queue, the leased claim."""

from __future__ import annotations

import logging
from dataclasses import asdict

from model.taxonomy import Taxonomy
from service.auth import Principal, check_claim, check_queue_access
from service.errors import ApiError
from service.logging import log_event
from service.schemas import PetitionOut, QueueCountsOut, QueuePageOut, QueuesOut
from service.settings import Settings
from service.views import petition_out, queue_name, summary_out
from store import QueueStore, Status

logger = logging.getLogger("triage.api")


def known_queue(store: QueueStore, queue: str) -> str:
    if queue not in store.queues:
        raise ApiError(
            404, "unknown_queue", f"队列不存在：{queue}", f"no such queue: {queue}", {"known": list(store.queues)}
        )
    return queue


def counts(store: QueueStore, taxonomy: Taxonomy, principal: Principal) -> QueuesOut:
    return QueuesOut(
        queues=[
            QueueCountsOut(queue=queue, name=queue_name(taxonomy, queue), **asdict(values))
            for queue, values in store.queue_counts().items()
            if principal.may_access_queue(queue)
        ]
    )


def page(
    store: QueueStore,
    taxonomy: Taxonomy,
    principal: Principal,
    queue: str,
    limit: int,
    offset: int,
    status: Status | None,
) -> QueuePageOut:
    known_queue(store, queue)
    check_queue_access(principal, queue)
    items, total = store.list_queue(queue, limit=limit, offset=offset, status=status)
    return QueuePageOut(
        queue=queue,
        name=queue_name(taxonomy, queue),
        total=total,
        limit=limit,
        offset=offset,
        items=[summary_out(item) for item in items],
    )


def claim(
    store: QueueStore,
    taxonomy: Taxonomy,
    settings: Settings,
    principal: Principal,
    queue: str,
    lease_seconds: int | None,
    worker: str | None,
) -> PetitionOut | None:
    """The claimed petition, or None when nothing in the queue is claimable."""
    known_queue(store, queue)
    check_claim(principal, queue)
    lease = min(lease_seconds or settings.lease_seconds, settings.max_lease_seconds)
    owner = principal.name if worker is None else f"{principal.name}/{worker}"
    petition = store.claim(queue, owner, lease_seconds=lease, role=principal.role)
    if petition is None:
        return None
    log_event(
        logger, logging.INFO, "queue.claimed", petition_id=petition.id, queue=queue, worker=owner, lease_seconds=lease
    )
    return petition_out(taxonomy, principal, petition)
