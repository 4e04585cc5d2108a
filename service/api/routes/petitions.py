"""Classification and the petition lifecycle: classify, submit (single and batch), read, route, close.

Thin: each route unpacks the request and calls service/petitions.py. CPU-bound handlers are plain
`def`: FastAPI runs them in its threadpool, and the model work itself happens in the
micro-batching thread (service/predictor.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Response

from service import petitions
from service.api.deps import (
    ClosingUser,
    CurrentUser,
    IntakeDep,
    RoutingUser,
    StoreDep,
    TaxonomyDep,
)
from service.schemas import (
    BatchIn,
    BatchOut,
    ClassifyIn,
    ClassifyOut,
    CloseIn,
    ErrorOut,
    PetitionOut,
    RouteIn,
    SubmitIn,
    SubmitOut,
)

router = APIRouter(prefix="/v1", tags=["petitions 信访件"])

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 409, 413, 422)
}
PetitionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="信访件编号 / petition id")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="幂等键：相同键重复提交返回原件 / the same key again returns the original petition",
    ),
]


@router.post(
    "/classify",
    response_model=ClassifyOut,
    responses=ERRORS,
    summary="分类（不保存）/ Classify a petition without storing it",
)
def classify(body: ClassifyIn, intake: IntakeDep) -> ClassifyOut:
    """返回领域、责任部门前三名、是否需人工复核及关键词。/ Domain, top-3 departments, needs_review and the
    terms behind the prediction. Nothing is stored."""
    return petitions.classify(body.text, intake)


@router.post(
    "/petitions",
    status_code=201,
    response_model=SubmitOut,
    responses={
        **ERRORS,
        200: {"model": SubmitOut, "description": "重复提交，返回原件 / repeat: the original petition"},
    },
    summary="提交信访件并入队 / Submit a petition: store, classify and enqueue it",
)
def submit(body: SubmitIn, response: Response, intake: IntakeDep, idempotency_key: IdempotencyKey = None) -> SubmitOut:
    """201 表示已写入数据库。/ A 201 means the petition is committed to the database. It goes to the
    suggested department's queue, or to `manual_triage` when the model is unsure. A repeated
    `Idempotency-Key` or `external_id` returns the original with 200 and `created: false`."""
    out = petitions.submit(body, idempotency_key, intake)
    response.headers["Location"] = f"/v1/petitions/{out.id}"
    if not out.created:
        response.status_code = 200
    return out


@router.post(
    "/petitions/batch",
    response_model=BatchOut,
    responses=ERRORS,
    summary="批量提交（最多 1,000 件）/ Submit up to 1,000 petitions",
)
def submit_batch(body: BatchIn, intake: IntakeDep) -> BatchOut:
    """每件单独校验；结果列出成功与失败及原因。/ Each item is validated on its own; the answer lists which
    items failed and why. Valid items are committed together before the response is sent."""
    return petitions.submit_batch(body.items, intake)


@router.get(
    "/petitions/{petition_id}",
    response_model=PetitionOut,
    responses=ERRORS,
    summary="查看信访件 / Read a petition with its queue, status and history",
)
def get_petition(
    petition_id: PetitionId, store: StoreDep, taxonomy: TaxonomyDep, principal: CurrentUser
) -> PetitionOut:
    """部门密钥只能查看本部门队列中的件，且在转交后才能看到原文。/ Department keys read only petitions in their
    own queue, and see the raw text only once it has been handed to them; `masked_text` is always
    present."""
    return petitions.read(store, taxonomy, petition_id, principal)


@router.post(
    "/petitions/{petition_id}/route",
    response_model=PetitionOut,
    responses=ERRORS,
    summary="确认或更正分流 / Confirm or correct the route",
)
def route_petition(
    petition_id: PetitionId, body: RouteIn, store: StoreDep, taxonomy: TaxonomyDep, principal: RoutingUser
) -> PetitionOut:
    """转入指定部门队列；与模型预测不同时记为反馈用于再训练。/ Moves the petition to the department's queue;
    when it differs from the prediction, the correction is recorded as feedback for retraining."""
    return petitions.route(store, taxonomy, petition_id, principal, body.department, body.domain, body.note)


@router.post(
    "/petitions/{petition_id}/close", response_model=PetitionOut, responses=ERRORS, summary="办结 / Close a petition"
)
def close_petition(
    petition_id: PetitionId, body: CloseIn, store: StoreDep, taxonomy: TaxonomyDep, principal: ClosingUser
) -> PetitionOut:
    """登记员、管理员，或该件所在队列的部门。/ Clerks, admins, or the department whose queue holds it."""
    return petitions.close(store, taxonomy, petition_id, principal, body.resolution)
