"""Classification and the petition lifecycle: classify, submit (single and batch), read, route, close.

Thin: each route unpacks the request and calls service/petitions.py. CPU-bound handlers are plain
`def`: FastAPI runs them in its threadpool, and the model work itself happens in the
micro-batching thread (service/predictor.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response

from service import petitions, search
from service.api.deps import (
    ClosingUser,
    CurrentUser,
    HandlingUser,
    IntakeDep,
    MetricsDep,
    NotingUser,
    RoutingUser,
    SettingsDep,
    SimilarDep,
    StoreDep,
    TaxonomyDep,
)
from service.api.responses import SchemaResponse
from service.schemas import (
    AcceptIn,
    BatchIn,
    BatchOut,
    ClassifyIn,
    ClassifyOut,
    CloseIn,
    ErrorOut,
    ExtendIn,
    NoteIn,
    PetitionOut,
    ReasonIn,
    RouteIn,
    SearchPageOut,
    SubmitIn,
    SubmitOut,
)
from service.search import XLSX_TYPE, SearchIn

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
def classify(body: ClassifyIn, intake: IntakeDep) -> SchemaResponse:
    """返回领域、责任部门前三名、是否需人工复核及关键词。/ Domain, top-3 departments, needs_review and the
    terms behind the prediction. Nothing is stored."""
    return SchemaResponse(petitions.classify(body.text, intake, body.petitioner_contact))


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
def submit(body: SubmitIn, intake: IntakeDep, idempotency_key: IdempotencyKey = None) -> SchemaResponse:
    """201 表示已写入数据库。/ A 201 means the petition is committed to the database. It goes to the
    suggested department's queue, or to `manual_triage` when the model is unsure. A repeated
    `Idempotency-Key` or `external_id` returns the original with 200 and `created: false`."""
    out = petitions.submit(body, idempotency_key, intake)
    return SchemaResponse(out, status_code=201 if out.created else 200, headers={"Location": f"/v1/petitions/{out.id}"})


@router.post(
    "/petitions/batch",
    response_model=BatchOut,
    responses=ERRORS,
    summary="批量提交（最多 1,000 件）/ Submit up to 1,000 petitions",
)
def submit_batch(body: BatchIn, intake: IntakeDep) -> SchemaResponse:
    """每件单独校验；结果列出成功与失败及原因。/ Each item is validated on its own; the answer lists which
    items failed and why. Valid items are committed together before the response is sent."""
    return SchemaResponse(petitions.submit_batch(body.items, intake))


SearchQuery = Annotated[SearchIn, Query()]


@router.get(
    "/petitions",
    response_model=SearchPageOut,
    responses=ERRORS,
    summary="查找信访件（文本、编号、日期、状态、队列、超期、渠道）/ Search and filter petitions",
)
def search_petitions(filters: SearchQuery, store: StoreDep, principal: CurrentUser) -> SearchPageOut:
    """文本在脱敏文本中查找，也匹配编号和来源系统编号；部门密钥只查本部门队列。/ Text is looked up in the
    masked text and also matches the number and the external id; a department key searches its own
    queue only. Default order: returned items first, then the nearest deadline."""
    return search.search(store, principal, filters)


@router.get(
    "/petitions/export.xlsx",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {XLSX_TYPE: {}}, "description": "Excel 文件 / the workbook"}},
    summary="导出当前列表为 Excel / Export the current list as .xlsx",
)
def export_petitions(filters: SearchQuery, store: StoreDep, taxonomy: TaxonomyDep, principal: CurrentUser) -> Response:
    """与查找相同的条件和顺序，最多 10,000 件；只含脱敏文本；以 = + - @ 开头的单元格加 ' 防止公式执行。/
    Same filters and order as the search, at most 10,000 rows, masked text only; cells starting with
    = + - @ are prefixed with ' so no spreadsheet evaluates them."""
    content = search.export_xlsx(store, taxonomy, principal, filters)
    return Response(
        content,
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": 'attachment; filename="petitions.xlsx"', "Cache-Control": "no-store"},
    )


@router.get(
    "/petitions/{petition_id}",
    response_model=PetitionOut,
    responses=ERRORS,
    summary="查看信访件 / Read a petition with its queue, status and history",
)
def get_petition(
    petition_id: PetitionId,
    store: StoreDep,
    taxonomy: TaxonomyDep,
    principal: CurrentUser,
    similar: SimilarDep,
    settings: SettingsDep,
) -> PetitionOut:
    """部门密钥只能查看本部门队列中的件，且在转交后才能看到原文。/ Department keys read only petitions in their
    own queue, and see the raw text only once it has been handed to them; `masked_text` is always
    present."""
    return petitions.read(store, taxonomy, petition_id, principal, similar, settings)


@router.post(
    "/petitions/{petition_id}/route",
    response_model=PetitionOut,
    responses=ERRORS,
    summary="确认或更正分流 / Confirm or correct the route",
)
def route_petition(
    petition_id: PetitionId,
    body: RouteIn,
    store: StoreDep,
    taxonomy: TaxonomyDep,
    metrics: MetricsDep,
    principal: RoutingUser,
) -> PetitionOut:
    """转入指定部门队列；对模型建议的决定（采纳、更正、改派）记为反馈，用于再训练和采纳统计。/ Moves the petition to
    the department's queue; the decision on the suggestion (accepted, corrected, re-routed) is recorded as
    feedback, for retraining and for `GET /v1/stats`."""
    return petitions.route(store, taxonomy, metrics, petition_id, principal, body.department, body.domain, body.note)


@router.post(
    "/petitions/{petition_id}/close", response_model=PetitionOut, responses=ERRORS, summary="办结 / Close a petition"
)
def close_petition(
    petition_id: PetitionId, body: CloseIn, store: StoreDep, taxonomy: TaxonomyDep, principal: ClosingUser
) -> PetitionOut:
    """登记员、管理员，或该件所在队列的部门；可附答复信访人的摘要。/ Clerks, admins, or the department whose
    queue holds it; with the resolution and, optionally, a summary of the reply to the petitioner."""
    return petitions.close(store, taxonomy, petition_id, principal, body.resolution, body.reply_summary)


@router.post(
    "/petitions/{petition_id}/accept",
    response_model=PetitionOut,
    responses=ERRORS,
    summary="受理（进入本部门办理）/ Accept into the department's work list",
)
def accept_petition(
    petition_id: PetitionId,
    store: StoreDep,
    taxonomy: TaxonomyDep,
    principal: HandlingUser,
    body: AcceptIn | None = None,
) -> PetitionOut:
    """本部门队列中的件；受理后由本部门承办至办结或退回（不是租约），转交期限停止，办理期限（60 日）开始。/
    An item in the department's own queue becomes its assignment until closed or returned (no lease):
    the hand-over clock stops and the handling clock (60 days) starts."""
    return petitions.accept(store, taxonomy, petition_id, principal, body.note if body else None)


@router.post(
    "/petitions/{petition_id}/return",
    response_model=PetitionOut,
    responses=ERRORS,
    summary="退回人工分流（须说明理由）/ Return to manual triage with a reason",
)
def return_petition(
    petition_id: PetitionId, body: ReasonIn, store: StoreDep, taxonomy: TaxonomyDep, principal: HandlingUser
) -> PetitionOut:
    """分错的件退回人工分流，排在人工分流队列最前。/ A wrongly routed item goes back to manual triage, at
    the top of that queue; the department's assignment ends."""
    return petitions.return_to_triage(store, taxonomy, petition_id, principal, body.reason)


@router.post(
    "/petitions/{petition_id}/notes",
    response_model=PetitionOut,
    responses=ERRORS,
    summary="添加备注 / Add a note to the history",
)
def note_petition(
    petition_id: PetitionId, body: NoteIn, store: StoreDep, taxonomy: TaxonomyDep, principal: NotingUser
) -> PetitionOut:
    return petitions.add_note(store, taxonomy, petition_id, principal, body.note)


@router.post(
    "/petitions/{petition_id}/extend",
    response_model=PetitionOut,
    responses=ERRORS,
    summary="申请延期（一次，最多 30 日）/ Extend the handling deadline once",
)
def extend_petition(
    petition_id: PetitionId, body: ExtendIn, store: StoreDep, taxonomy: TaxonomyDep, principal: HandlingUser
) -> PetitionOut:
    """已受理的件可延期一次，须说明理由。/ An accepted item may be extended once, with a reason, by at
    most the configured maximum (default 30 days)."""
    return petitions.extend(store, taxonomy, petition_id, principal, body.days, body.reason)
