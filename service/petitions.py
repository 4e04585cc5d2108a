"""The petition service layer: classify, submit (single and batch), read, route, close.

Route functions in service/api/routes/ only unpack the request and call these. Every function
takes what it needs explicitly (store, model, predictor, ...) and raises `ApiError` for answers
other than success, so it can be called without HTTP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from model.classifier import Prediction
from model.office_time import CHINA_STANDARD_TIME
from model.taxonomy import Taxonomy
from model.text import mask_as_written, prepare_text
from service.auth import Permission, Principal
from service.errors import ApiError, error_body, validation_error
from service.logging import log_event
from service.metrics import Metrics
from service.predictor import Batcher, LoadedModel
from service.schemas import (
    BatchItemOut,
    BatchOut,
    ClassifyOut,
    PetitionOut,
    SubmitIn,
    SubmitOut,
)
from service.settings import Settings
from service.similar import find_related, petition_related, petitioner_key, similar_out
from service.views import handed_to, head_summary, live_prediction_out, petition_out, submit_out
from store import (
    Action,
    ExtensionRefused,
    Guard,
    IdempotencyConflict,
    InvalidTransition,
    PetitionClosed,
    Petitioner,
    PetitionNotFound,
    PetitionRecord,
    QueueStore,
    Status,
    StoreError,
    Submission,
    Submitted,
    raised_flags,
    suggested_queue,
)
from store.similar import Related, SimilarPetitions, petitioner_runs

logger = logging.getLogger("triage.api")

CLOCK_SKEW = timedelta(minutes=5)
_submit_adapter = TypeAdapter(SubmitIn)


@dataclass(frozen=True)
class Intake:
    """What a submitting request brings besides its body: the model, the predictor and the caller."""

    store: QueueStore
    model: LoadedModel
    predictor: Batcher
    settings: Settings
    taxonomy: Taxonomy
    metrics: Metrics
    principal: Principal
    similar: SimilarPetitions


def not_found(petition_id: int) -> ApiError:
    return ApiError(404, "petition_not_found", f"信访件 {petition_id} 不存在", f"no petition {petition_id}")


def conflict_error(existing: int) -> ApiError:
    return ApiError(
        409,
        "idempotency_conflict",
        "该编号已用于内容不同的信访件",
        f"this external id / idempotency key was already used for a different text (petition {existing})",
    )


def closed_error(petition_id: int) -> ApiError:
    return ApiError(409, "petition_closed", f"信访件 {petition_id} 已办结", f"petition {petition_id} is closed")


def unknown_label(kind: str, kind_zh: str, value: str, known: Iterable[str]) -> ApiError:
    return ApiError(
        422, f"unknown_{kind}", f"未知{kind_zh}：{value}", f"unknown {kind}: {value}", {"known": sorted(known)}
    )


def invalid_transition(petition_id: int, action: str, status: str) -> ApiError:
    action_label, status_label = Action(action).label, Status(status).label
    return ApiError(
        409,
        "invalid_transition",
        f"信访件 {petition_id} 当前状态为“{status_label}”，不能{action_label}",
        f"petition {petition_id} is {status}: it cannot be {action} now",
        {"status": status, "action": action},
    )


def extension_refused(petition_id: int, reason: str, max_days: int) -> ApiError:
    if reason == "used":
        return ApiError(
            409, "extension_used", f"信访件 {petition_id} 已延期过一次", f"petition {petition_id} was already extended"
        )
    return ApiError(
        422,
        "extension_too_long",
        f"延期不能超过 {max_days} 日",
        f"an extension may add at most {max_days} days",
        {"max_days": max_days},
    )


@contextmanager
def answering_store_errors(petition_id: int, store: QueueStore | None = None) -> Iterator[None]:
    """Turn the store's errors about one petition into the API's answers (404, 409, 422)."""
    try:
        yield
    except PetitionNotFound as error:
        raise not_found(petition_id) from error
    except PetitionClosed as error:
        raise closed_error(petition_id) from error
    except InvalidTransition as error:
        raise invalid_transition(petition_id, error.action, error.status) from error
    except ExtensionRefused as error:
        max_days = store.deadlines.max_extension_days if store else 0
        raise extension_refused(petition_id, error.reason, max_days) from error


def checked_text(text: str, settings: Settings) -> str:
    if len(text) > settings.max_text_chars:
        raise ApiError(
            422,
            "text_too_long",
            f"信访内容超过 {settings.max_text_chars} 字",
            f"text is longer than {settings.max_text_chars} characters",
        )
    return text.strip()


def received_time(value: datetime | None, now: datetime) -> datetime:
    """When the office received it, in UTC; the schema has already refused dates before 1900."""
    if value is None:
        return now
    aware = value if value.tzinfo is not None else value.replace(tzinfo=CHINA_STANDARD_TIME)
    if aware > now + CLOCK_SKEW:
        raise ApiError(422, "received_in_future", "收件时间不能晚于当前时间", "received_at is in the future")
    return aware.astimezone(UTC)


def checked_batch_size(items: list[Any], settings: Settings) -> None:
    """Bound the work of one request: item count and the characters of all texts together."""
    if not items:
        raise ApiError(422, "batch_empty", "批量提交不能为空", "a batch needs at least one item")
    if len(items) > settings.max_batch_items:
        raise ApiError(
            422,
            "batch_too_large",
            f"每批最多 {settings.max_batch_items} 件",
            f"at most {settings.max_batch_items} items per batch",
        )
    chars = sum(len(item["text"]) for item in items if isinstance(item, dict) and isinstance(item.get("text"), str))
    if chars > settings.max_batch_chars:
        raise ApiError(
            422,
            "batch_too_large",
            f"每批文字合计最多 {settings.max_batch_chars} 字",
            f"at most {settings.max_batch_chars} characters of text per batch",
        )


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def classify(text: str, intake: Intake, contact: str | None = None) -> ClassifyOut:
    """Classify without storing: the suggestion, the queue it would go to, the masked text, and the
    stored petitions about the same matter (a repeat when one is from the same petitioner)."""
    started = time.perf_counter()
    model, taxonomy, metrics = intake.model, intake.taxonomy, intake.metrics
    text = checked_text(text, intake.settings)
    masked = prepare_text(text)
    related = find_related(intake.similar, intake.settings, masked, petitioner_key(contact, intake.settings))
    predictor = intake.predictor
    prediction = predictor.predict(model, [text])[0]
    metrics.observe_predictions(prediction.heads, prediction.needs_review)
    out = live_prediction_out(taxonomy, prediction, model.version, model.thresholds)
    queue = suggested_queue(prediction, taxonomy.departments)
    log_event(
        logger,
        logging.INFO,
        "petition.classified",
        model_version=model.version,
        heads={name: head_summary(head) for name, head in prediction.heads.items()},
        needs_review=out.needs_review,
        queue=queue,
        chars=len(text),
        similar=len(related.similar),
        repeat_of=related.repeat_of.brief.id if related.repeat_of else None,
        flags=[flag.flag for flag in out.flags],
        ms=_elapsed_ms(started),
    )
    return ClassifyOut(
        **dict(out),  # the validated parts as they are, not dumped and validated again
        suggested_queue=queue,
        masked_text=mask_as_written(text),
        similar=similar_out(related),
        repeat_of=related.repeat_of.brief.id if related.repeat_of else None,
    )


def _submission(
    body: SubmitIn,
    text: str,
    prediction: Prediction,
    intake: Intake,
    received: datetime,
    idempotency_key: str | None,
    related: Related | None = None,
) -> Submission:
    return Submission(
        text=text,
        channel=body.channel,
        prediction=prediction,
        model_version=intake.model.version,
        received_at=received,
        external_id=body.external_id,
        idempotency_key=idempotency_key,
        actor=intake.principal.name,
        role=intake.principal.role,
        petitioner=petitioner(body),
        petitioner_key=petitioner_key(body.petitioner_contact, intake.settings),
        repeat_of=related.repeat_of.brief.id if related and related.repeat_of else None,
    )


def petitioner(body: SubmitIn) -> Petitioner | None:
    """The petitioner fields of a submission, blank ones dropped (None when none was given)."""

    def clean(value: str | None) -> str | None:
        return value.strip() or None if value else None

    found = Petitioner(clean(body.petitioner_name), clean(body.petitioner_contact), body.headcount, clean(body.address))
    return None if found == Petitioner() else found


def submit(body: SubmitIn, idempotency_key: str | None, intake: Intake) -> SubmitOut:
    """Store, classify and enqueue one petition; `created` is False for a repeat of an earlier one."""
    started = time.perf_counter()
    text = checked_text(body.text, intake.settings)
    received = received_time(body.received_at, datetime.now(UTC))
    store = intake.store
    existing = store.find(external_id=body.external_id, idempotency_key=idempotency_key)
    outcome: Submitted | StoreError
    key = petitioner_key(body.petitioner_contact, intake.settings)
    related = find_related(intake.similar, intake.settings, prepare_text(text), key, existing)
    if existing is None:
        predictions, outcomes = intake.predictor.submit(
            intake.model,
            [text],
            lambda found: [_submission(body, text, found[0], intake, received, idempotency_key, related)],
        )
        outcome = outcomes[0]
        if isinstance(outcome, IdempotencyConflict):
            raise conflict_error(outcome.petition_id)
        assert isinstance(outcome, Submitted)
        if outcome.created:
            intake.metrics.observe_predictions(predictions[0].heads, predictions[0].needs_review)
    else:
        outcome = Submitted(existing, created=False)
    petition = store.get(outcome.petition_id, with_history=False)
    if outcome.created:
        intake.metrics.observe_suggestion(petition.predicted_department, petition.needs_review)
    if not outcome.created and petition.text != text:
        raise conflict_error(outcome.petition_id)
    intake.metrics.submissions.labels(outcome="created" if outcome.created else "duplicate").inc()
    log_event(
        logger,
        logging.INFO,
        "petition.submitted",
        petition_id=petition.id,
        created=outcome.created,
        queue=petition.queue,
        domain=petition.predicted_domain,
        domain_confidence=petition.domain_confidence,
        department=petition.predicted_department,
        department_confidence=petition.department_confidence,
        needs_review=petition.needs_review,
        channel=petition.channel,
        model_version=petition.model_version,
        similar=len(related.similar),
        repeat_of=petition.repeat_of,
        flags=raised_flags(petition.flags),
        actor=intake.principal.name,
        ms=_elapsed_ms(started),
    )
    return submit_out(intake.taxonomy, petition, outcome.created, similar_out(related))


def _failed(index: int, error: ApiError) -> BatchItemOut:
    return BatchItemOut(
        index=index, ok=False, error=error_body(error.code, error.message, error.message_en, error.details)["error"]
    )


# A valid batch item: its position in the request, the parsed body, the checked text, when it was received.
ValidItem = tuple[int, SubmitIn, str, datetime]


def _batch_rows(
    group: list[ValidItem], related: list[Related], intake: Intake
) -> Callable[[list[Prediction]], list[Submission]]:
    """The rows to store for a run of batch items, once the predictor has their predictions."""

    def rows(found: list[Prediction]) -> list[Submission]:
        return [
            _submission(parsed, text, prediction, intake, received, None, relation)
            for (_, parsed, text, received), prediction, relation in zip(group, found, related, strict=True)
        ]

    return rows


def submit_batch(items: list[Any], intake: Intake) -> BatchOut:
    """Validate each item on its own; store the valid ones (one commit, more when a petitioner repeats within
    the batch); report each item's outcome with its similar petitions and repeat, as for a single submission."""
    started = time.perf_counter()
    settings = intake.settings
    checked_batch_size(items, settings)
    now = datetime.now(UTC)
    results: dict[int, BatchItemOut] = {}
    valid: list[ValidItem] = []
    for index, item in enumerate(items):
        try:
            parsed = _submit_adapter.validate_python(item)
            valid.append((index, parsed, checked_text(parsed.text, settings), received_time(parsed.received_at, now)))
        except ValidationError as error:
            results[index] = _failed(index, validation_error(list(error.errors())))
        except ApiError as error:
            results[index] = _failed(index, error)

    keys = [petitioner_key(parsed.petitioner_contact, settings) for _, parsed, _, _ in valid]
    for run in petitioner_runs(keys):
        # Similar and repeat petitions as for a single submission; each run is stored before the next is
        # looked up, so a repeat of an earlier item of this batch is found.
        group = [valid[position] for position in run]
        related = [
            find_related(
                intake.similar,
                settings,
                prepare_text(text),
                keys[position],
                intake.store.find(external_id=parsed.external_id) if parsed.external_id else None,
            )
            for position, (_, parsed, text, _) in zip(run, group, strict=True)
        ]

        predictions, outcomes = intake.predictor.submit(
            intake.model, [text for _, _, text, _ in group], _batch_rows(group, related, intake)
        )
        for (index, _, _, _), outcome, prediction, relation in zip(group, outcomes, predictions, related, strict=True):
            if isinstance(outcome, StoreError):
                results[index] = _failed(index, conflict_error(int(outcome.args[0])))
                continue
            petition = intake.store.get(outcome.petition_id, with_history=False)
            if outcome.created:
                intake.metrics.observe_predictions(prediction.heads, prediction.needs_review)
                intake.metrics.observe_suggestion(petition.predicted_department, petition.needs_review)
            results[index] = BatchItemOut(
                index=index,
                ok=True,
                petition=submit_out(intake.taxonomy, petition, outcome.created, similar_out(relation)),
            )
    answers = [results[index] for index in range(len(items))]
    created = sum(1 for item in answers if item.ok and item.petition and item.petition.created)
    duplicates = sum(1 for item in answers if item.ok and item.petition and not item.petition.created)
    failed = sum(1 for item in answers if not item.ok)
    metrics = intake.metrics
    metrics.submissions.labels(outcome="created").inc(created)
    metrics.submissions.labels(outcome="duplicate").inc(duplicates)
    metrics.submissions.labels(outcome="failed").inc(failed)
    log_event(
        logger,
        logging.INFO,
        "petition.batch_submitted",
        received=len(answers),
        created=created,
        duplicates=duplicates,
        failed=failed,
        actor=intake.principal.name,
        ms=_elapsed_ms(started),
    )
    return BatchOut(received=len(answers), created=created, duplicates=duplicates, failed=failed, items=answers)


def readable(store: QueueStore, petition_id: int, principal: Principal) -> PetitionRecord:
    """The petition, if it exists and the caller may access its queue: 404 for both, so that a
    department cannot learn which ids exist in other queues."""
    try:
        petition = store.get(petition_id)
    except PetitionNotFound as error:
        raise not_found(petition_id) from error
    if not principal.may_access_queue(petition.queue):
        raise not_found(petition_id)
    return petition


def _require_hand_over(principal: Principal, petition: PetitionRecord, doing: str) -> None:
    """A department acts on a petition only once a clerk confirmed its route there: before that it is a
    suggestion the department cannot even read in full (`views.handed_to`)."""
    if not principal.can(Permission.SEE_TEXT) and not handed_to(principal, petition):
        raise ApiError(
            409,
            "not_handed_over",
            f"该件尚未由登记员确认分流到本部门，不能{doing}；不属于本部门职责的可退回",
            "a clerk has not yet confirmed this petition's route to your department",
        )


def check_may_accept(principal: Principal, petition: PetitionRecord) -> None:
    """Accepting starts the handling clock; an item accepted on a suggestion alone could never be closed."""
    _require_hand_over(principal, petition, "受理")


def check_may_close(principal: Principal, petition: PetitionRecord) -> None:
    """A department closes only what a clerk handed to it; nobody but an admin closes another's claim."""
    _require_hand_over(principal, petition, "办结")
    lease = petition.lease
    if lease is not None and not principal.can(Permission.OVERRIDE_LEASE) and not principal.holds(lease.owner):
        raise ApiError(
            409,
            "leased_to_other",
            f"该件已由 {lease.owner} 领取办理中",
            f"petition {petition.id} is claimed by {lease.owner}",
            {"owner": lease.owner, "expires_at": lease.expires_at.isoformat()},
        )


def read(
    store: QueueStore,
    taxonomy: Taxonomy,
    petition_id: int,
    principal: Principal,
    similar: SimilarPetitions,
    settings: Settings,
) -> PetitionOut:
    petition = readable(store, petition_id, principal)
    return petition_out(taxonomy, principal, petition, petition_related(similar, settings, principal, petition, None))


def route(
    store: QueueStore,
    taxonomy: Taxonomy,
    metrics: Metrics,
    petition_id: int,
    principal: Principal,
    department: str,
    domain: str | None,
    note: str | None,
) -> PetitionOut:
    """Confirm or correct the route; the decision on the suggestion is recorded as feedback and counted."""
    if department not in taxonomy.departments:
        raise unknown_label("department", "部门", department, taxonomy.departments)
    if domain is not None and domain not in taxonomy.domains:
        raise unknown_label("domain", "领域", domain, taxonomy.domains)
    with answering_store_errors(petition_id, store):
        routed = store.route(
            petition_id, department, domain=domain, note=note, actor=principal.name, role=principal.role
        )
    petition = routed.petition
    if routed.decision is not None:
        metrics.observe_decision(routed.decision, petition.predicted_department, petition.auto_routed)
    log_event(
        logger,
        logging.INFO,
        "petition.routed",
        petition_id=petition_id,
        department=department,
        domain=petition.domain,
        correction=routed.correction,
        decision=routed.decision,
        actor=principal.name,
    )
    return petition_out(taxonomy, principal, petition)


def act(
    store: QueueStore,
    taxonomy: Taxonomy,
    petition_id: int,
    principal: Principal,
    action: Action,
    step: Callable[[Guard], PetitionRecord],
    check: Callable[[Principal, PetitionRecord], None] | None = None,
) -> PetitionOut:
    """One workflow step on a petition the caller may read (404/403 first), with the store's refusals
    answered as 409/422; logged by id, queue, status and actor (never the note or the reason).

    The caller's checks run again on the locked row inside the step's transaction (`guard`): read
    before it, they could pass for an item a clerk was moving to another queue at that moment."""
    before = readable(store, petition_id, principal)

    def guard(current: PetitionRecord) -> None:
        if not principal.may_access_queue(current.queue):
            raise not_found(petition_id)
        if check is not None:
            check(principal, current)

    guard(before)  # the common refusals without a write transaction
    with answering_store_errors(petition_id, store):
        petition = step(guard)
    log_event(
        logger,
        logging.INFO,
        f"petition.{action}",
        petition_id=petition_id,
        queue=before.queue,
        to_queue=petition.queue,
        status=petition.status,
        actor=principal.name,
    )
    return petition_out(taxonomy, principal, petition)


def close(
    store: QueueStore,
    taxonomy: Taxonomy,
    petition_id: int,
    principal: Principal,
    resolution: str,
    reply_summary: str | None = None,
) -> PetitionOut:
    reply = reply_summary.strip() or None if reply_summary else None
    return act(
        store,
        taxonomy,
        petition_id,
        principal,
        Action.CLOSED,
        lambda guard: store.close(
            petition_id, resolution.strip(), reply_summary=reply, actor=principal.name, role=principal.role, guard=guard
        ),
        check_may_close,
    )


def accept(
    store: QueueStore, taxonomy: Taxonomy, petition_id: int, principal: Principal, note: str | None
) -> PetitionOut:
    return act(
        store,
        taxonomy,
        petition_id,
        principal,
        Action.ACCEPTED,
        lambda guard: store.accept(petition_id, note=note, actor=principal.name, role=principal.role, guard=guard),
        check_may_accept,
    )


def return_to_triage(
    store: QueueStore, taxonomy: Taxonomy, petition_id: int, principal: Principal, reason: str
) -> PetitionOut:
    return act(
        store,
        taxonomy,
        petition_id,
        principal,
        Action.RETURNED,
        lambda guard: store.return_to_triage(
            petition_id, reason.strip(), actor=principal.name, role=principal.role, guard=guard
        ),
    )


def add_note(store: QueueStore, taxonomy: Taxonomy, petition_id: int, principal: Principal, note: str) -> PetitionOut:
    return act(
        store,
        taxonomy,
        petition_id,
        principal,
        Action.NOTED,
        lambda guard: store.add_note(petition_id, note.strip(), actor=principal.name, role=principal.role, guard=guard),
    )


def extend(
    store: QueueStore, taxonomy: Taxonomy, petition_id: int, principal: Principal, days: int, reason: str
) -> PetitionOut:
    return act(
        store,
        taxonomy,
        petition_id,
        principal,
        Action.EXTENDED,
        lambda guard: store.extend(
            petition_id, days, reason.strip(), actor=principal.name, role=principal.role, guard=guard
        ),
    )
