"""Classification and the petition lifecycle: classify, submit (single and batch), read, route, close.

CPU-bound handlers are plain `def`: FastAPI runs them in its threadpool, and the model work
itself happens in the micro-batching thread (service/predictor.py).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Response
from pydantic import TypeAdapter, ValidationError

from model.taxonomy import Taxonomy
from model.text import prepare_text
from service.api.deps import get_batcher, get_metrics, get_model, get_settings, get_store, get_taxonomy
from service.api.views import (
    head_summary,
    live_prediction_out,
    petition_out,
    submit_out,
)
from service.auth import Principal, check_queue_access, current_principal, forbidden, require
from service.db import (
    IdempotencyConflict,
    PetitionClosed,
    PetitionNotFound,
    QueueStore,
    StoreError,
    Submission,
    Submitted,
    suggested_queue,
)
from service.errors import ApiError, error_body, validation_error
from service.logging import log_event
from service.metrics import Metrics
from service.predictor import Batcher, LoadedModel
from service.schemas import (
    BatchItemResult,
    BatchRequest,
    BatchResponse,
    ClassifyRequest,
    ClassifyResponse,
    CloseRequest,
    ErrorResponse,
    PetitionOut,
    RouteRequest,
    SubmitRequest,
    SubmitResponse,
)
from service.settings import Settings

logger = logging.getLogger("triage.api")
router = APIRouter(prefix="/v1", tags=["petitions 信访件"])

CHINA_STANDARD_TIME = timezone(timedelta(hours=8))
CLOCK_SKEW = timedelta(minutes=5)
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 409, 413, 422)
}

Store = Annotated[QueueStore, Depends(get_store)]
Model = Annotated[LoadedModel, Depends(get_model)]
Predictor = Annotated[Batcher, Depends(get_batcher)]
Config = Annotated[Settings, Depends(get_settings)]
Labels = Annotated[Taxonomy, Depends(get_taxonomy)]
Counters = Annotated[Metrics, Depends(get_metrics)]
PetitionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="信访件编号 / petition id")]
_submit_adapter = TypeAdapter(SubmitRequest)


def not_found(petition_id: int) -> ApiError:
    return ApiError(404, "petition_not_found", f"信访件 {petition_id} 不存在", f"no petition {petition_id}")


def conflict_error(existing: int) -> ApiError:
    return ApiError(409, "idempotency_conflict", "该编号已用于内容不同的信访件",
                    f"this external id / idempotency key was already used for a different text (petition "
                    f"{existing})")


def closed_error(petition_id: int) -> ApiError:
    return ApiError(409, "petition_closed", f"信访件 {petition_id} 已办结", f"petition {petition_id} is closed")


def checked_text(text: str, settings: Settings) -> str:
    if len(text) > settings.max_text_chars:
        raise ApiError(422, "text_too_long", f"信访内容超过 {settings.max_text_chars} 字",
                       f"text is longer than {settings.max_text_chars} characters")
    return text.strip()


def received_time(value: datetime | None, now: datetime) -> datetime:
    if value is None:
        return now
    aware = value if value.tzinfo is not None else value.replace(tzinfo=CHINA_STANDARD_TIME)
    if aware > now + CLOCK_SKEW:
        raise ApiError(422, "received_in_future", "收件时间不能晚于当前时间", "received_at is in the future")
    return aware.astimezone(UTC)


@router.post("/classify", response_model=ClassifyResponse, responses=ERRORS,
             summary="分类（不保存）/ Classify a petition without storing it")
def classify(
    body: ClassifyRequest, model: Model, predictor: Predictor, settings: Config, taxonomy: Labels,
    metrics: Counters, principal: Annotated[Principal, Depends(require("clerk", "admin"))],
) -> ClassifyResponse:
    """返回领域、责任部门前三名、是否需人工复核及关键词。/ Domain, top-3 departments, needs_review and the
    terms behind the prediction. Nothing is stored."""
    started = time.perf_counter()
    text = checked_text(body.text, settings)
    prediction = predictor.predict(model, [text])[0]
    metrics.observe_predictions(prediction.heads, prediction.needs_review)
    out = live_prediction_out(taxonomy, prediction, model.version, model.thresholds)
    queue = suggested_queue(prediction, taxonomy.departments)
    log_event(logger, logging.INFO, "petition.classified", model_version=model.version,
              heads={name: head_summary(head) for name, head in prediction.heads.items()},
              needs_review=out.needs_review, queue=queue, chars=len(text),
              ms=round((time.perf_counter() - started) * 1000, 2))
    return ClassifyResponse(**out.model_dump(), suggested_queue=queue, masked_text=prepare_text(text))


def _submission(body: SubmitRequest, text: str, prediction: Any, model: LoadedModel, received: datetime,
                principal: Principal, idempotency_key: str | None) -> Submission:
    return Submission(text=text, channel=body.channel, prediction=prediction, model_version=model.version,
                      received_at=received, external_id=body.external_id, idempotency_key=idempotency_key,
                      actor=principal.name, role=principal.role)


@router.post("/petitions", status_code=201, response_model=SubmitResponse, responses={
    **ERRORS, 200: {"model": SubmitResponse, "description": "重复提交，返回原件 / repeat: the original petition"}},
    summary="提交信访件并入队 / Submit a petition: store, classify and enqueue it")
def submit(
    body: SubmitRequest, response: Response, store: Store, model: Model, predictor: Predictor,
    settings: Config, taxonomy: Labels, metrics: Counters,
    principal: Annotated[Principal, Depends(require("clerk", "admin"))],
    idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key", min_length=1, max_length=200,
        description="幂等键：相同键重复提交返回原件 / the same key again returns the original petition")] = None,
) -> SubmitResponse:
    """201 表示已写入数据库。/ A 201 means the petition is committed to the database. It goes to the
    suggested department's queue, or to `manual_triage` when the model is unsure. A repeated
    `Idempotency-Key` or `external_id` returns the original with 200 and `created: false`."""
    started = time.perf_counter()
    text = checked_text(body.text, settings)
    now = datetime.now(UTC)
    received = received_time(body.received_at, now)
    existing = store.find(external_id=body.external_id, idempotency_key=idempotency_key)
    if existing is None:
        predictions, outcomes = predictor.submit(model, [text], lambda found: [
            _submission(body, text, found[0], model, received, principal, idempotency_key)])
        outcome = outcomes[0]
        if isinstance(outcome, IdempotencyConflict):
            raise conflict_error(int(outcome.args[0]))
        assert isinstance(outcome, Submitted)
        if outcome.created:
            metrics.observe_predictions(predictions[0].heads, predictions[0].needs_review)
    else:
        outcome = Submitted(existing, created=False)
    petition = store.get(outcome.petition_id, with_history=False)
    if not outcome.created and petition["text"] != text:
        raise conflict_error(outcome.petition_id)
    metrics.submissions.labels(outcome="created" if outcome.created else "duplicate").inc()
    response.headers["Location"] = f"/v1/petitions/{petition.id}"
    if not outcome.created:
        response.status_code = 200
    log_event(logger, logging.INFO, "petition.submitted", petition_id=petition.id, created=outcome.created,
              queue=petition.queue, domain=petition["predicted_domain"],
              domain_confidence=petition["domain_confidence"], department=petition["predicted_department"],
              department_confidence=petition["department_confidence"], needs_review=petition["needs_review"],
              channel=petition["channel"], model_version=petition["model_version"], actor=principal.name,
              ms=round((time.perf_counter() - started) * 1000, 2))
    return submit_out(taxonomy, petition, outcome.created)


@router.post("/petitions/batch", response_model=BatchResponse, responses=ERRORS,
             summary="批量提交（最多 1,000 件）/ Submit up to 1,000 petitions")
def submit_batch(
    body: BatchRequest, store: Store, model: Model, predictor: Predictor, settings: Config,
    taxonomy: Labels, metrics: Counters, principal: Annotated[Principal, Depends(require("clerk", "admin"))],
) -> BatchResponse:
    """每件单独校验；结果列出成功与失败及原因。/ Each item is validated on its own; the answer lists which
    items failed and why. Valid items are committed together before the response is sent."""
    started = time.perf_counter()
    if not body.items:
        raise ApiError(422, "batch_empty", "批量提交不能为空", "a batch needs at least one item")
    if len(body.items) > settings.max_batch_items:
        raise ApiError(422, "batch_too_large", f"每批最多 {settings.max_batch_items} 件",
                       f"at most {settings.max_batch_items} items per batch")
    now = datetime.now(UTC)
    results: dict[int, BatchItemResult] = {}
    valid: list[tuple[int, SubmitRequest, str, datetime]] = []
    for index, item in enumerate(body.items):
        try:
            parsed = _submit_adapter.validate_python(item)
            valid.append((index, parsed, checked_text(parsed.text, settings), received_time(parsed.received_at, now)))
        except ValidationError as error:
            results[index] = _failed(index, validation_error(list(error.errors())))
        except ApiError as error:
            results[index] = _failed(index, error)
    def rows(found: list[Any]) -> list[Submission]:
        return [_submission(parsed, text, prediction, model, received, principal, None)
                for (_, parsed, text, received), prediction in zip(valid, found, strict=True)]

    predictions, outcomes = (predictor.submit(model, [text for _, _, text, _ in valid], rows)
                             if valid else ([], []))
    for (index, _, _, _), outcome, prediction in zip(valid, outcomes, predictions, strict=True):
        if isinstance(outcome, StoreError):
            results[index] = _failed(index, conflict_error(int(outcome.args[0])))
            continue
        petition = store.get(outcome.petition_id, with_history=False)
        if outcome.created:
            metrics.observe_predictions(prediction.heads, prediction.needs_review)
        results[index] = BatchItemResult(index=index, ok=True, petition=submit_out(taxonomy, petition,
                                                                                   outcome.created))
    items = [results[index] for index in range(len(body.items))]
    created = sum(1 for item in items if item.ok and item.petition and item.petition.created)
    duplicates = sum(1 for item in items if item.ok and item.petition and not item.petition.created)
    failed = sum(1 for item in items if not item.ok)
    metrics.submissions.labels(outcome="created").inc(created)
    metrics.submissions.labels(outcome="duplicate").inc(duplicates)
    metrics.submissions.labels(outcome="failed").inc(failed)
    log_event(logger, logging.INFO, "petition.batch_submitted", received=len(items), created=created,
              duplicates=duplicates, failed=failed, actor=principal.name,
              ms=round((time.perf_counter() - started) * 1000, 2))
    return BatchResponse(received=len(items), created=created, duplicates=duplicates, failed=failed, items=items)


def _failed(index: int, error: ApiError) -> BatchItemResult:
    return BatchItemResult(index=index, ok=False,
                           error=error_body(error.code, error.message, error.message_en, error.details)["error"])


def _readable(store: QueueStore, petition_id: int, principal: Principal) -> Any:
    try:
        petition = store.get(petition_id)
    except PetitionNotFound as error:
        raise not_found(petition_id) from error
    check_queue_access(principal, petition.queue)
    return petition


@router.get("/petitions/{petition_id}", response_model=PetitionOut, responses=ERRORS,
            summary="查看信访件 / Read a petition with its queue, status and history")
def get_petition(
    petition_id: PetitionId, store: Store, taxonomy: Labels,
    principal: Annotated[Principal, Depends(current_principal)],
) -> PetitionOut:
    """部门密钥只能查看本部门队列中的件，且在转交后才能看到原文。/ Department keys read only petitions in their
    own queue, and see the raw text only once it has been handed to them; `masked_text` is always
    present."""
    return petition_out(taxonomy, principal, _readable(store, petition_id, principal))


@router.post("/petitions/{petition_id}/route", response_model=PetitionOut, responses=ERRORS,
             summary="确认或更正分流 / Confirm or correct the route")
def route_petition(
    petition_id: PetitionId, body: RouteRequest, store: Store, taxonomy: Labels,
    principal: Annotated[Principal, Depends(require("clerk", "admin"))],
) -> PetitionOut:
    """转入指定部门队列；与模型预测不同时记为反馈用于再训练。/ Moves the petition to the department's queue;
    when it differs from the prediction, the correction is recorded as feedback for retraining."""
    if body.department not in taxonomy.departments:
        raise ApiError(422, "unknown_department", f"未知部门：{body.department}",
                       f"unknown department: {body.department}",
                       {"known": sorted(taxonomy.departments)})
    if body.domain is not None and body.domain not in taxonomy.domains:
        raise ApiError(422, "unknown_domain", f"未知领域：{body.domain}", f"unknown domain: {body.domain}",
                       {"known": sorted(taxonomy.domains)})
    try:
        petition, correction = store.route(petition_id, body.department, domain=body.domain, note=body.note,
                                           actor=principal.name, role=principal.role)
    except PetitionNotFound as error:
        raise not_found(petition_id) from error
    except PetitionClosed as error:
        raise closed_error(petition_id) from error
    log_event(logger, logging.INFO, "petition.routed", petition_id=petition_id, department=body.department,
              domain=petition["domain"], correction=correction, actor=principal.name)
    return petition_out(taxonomy, principal, petition)


@router.post("/petitions/{petition_id}/close", response_model=PetitionOut, responses=ERRORS,
             summary="办结 / Close a petition")
def close_petition(
    petition_id: PetitionId, body: CloseRequest, store: Store, taxonomy: Labels,
    principal: Annotated[Principal, Depends(current_principal)],
) -> PetitionOut:
    """登记员、管理员，或该件所在队列的部门。/ Clerks, admins, or the department whose queue holds it."""
    _readable(store, petition_id, principal)
    if principal.role not in ("clerk", "admin", "department"):
        raise forbidden()
    try:
        petition = store.close(petition_id, body.resolution.strip(), actor=principal.name, role=principal.role)
    except PetitionNotFound as error:
        raise not_found(petition_id) from error
    except PetitionClosed as error:
        raise closed_error(petition_id) from error
    log_event(logger, logging.INFO, "petition.closed", petition_id=petition_id, queue=petition.queue,
              actor=principal.name)
    return petition_out(taxonomy, principal, petition)
