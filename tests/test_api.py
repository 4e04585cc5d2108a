"""The HTTP API through TestClient (as a context manager, so the lifespan runs): every endpoint, each
role, each kind of bad input. Uses the session's trained model; each test gets its own empty database,
and the tests that take `client` run twice: on SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import json
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, get_args

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter

from model.registry import Registry
from service import schemas
from service.api.deps import StoreDep
from service.app import create_app
from service.logging import JsonFormatter
from service.schemas import BatchOut, ClassifyOut, SubmitOut
from service.search import SearchIn
from service.settings import ApiKeyConfig, Settings
from tests.postgres import PostgresCluster
from tests.test_queue import submission

KEYS = {
    "k-clerk": ApiKeyConfig(role="clerk", name="clerk-1"),
    "k-admin": ApiKeyConfig(role="admin", name="admin-1"),
    "k-housing": ApiKeyConfig(role="department", name="housing-1", department="housing"),
    "k-finance": ApiKeyConfig(role="department", name="finance-1", department="finance_regulation"),
}
CLERK = {"X-API-Key": "k-clerk"}
ADMIN = {"X-API-Key": "k-admin"}
HOUSING = {"X-API-Key": "k-housing"}
FINANCE = {"X-API-Key": "k-finance"}

HOUSING_TEXT = (
    "我于2021年购买某小区商品房，开发商承诺2023年交房，至今逾期未交付，多次找开发商无果，请求住建部门督促交房。"
    "联系电话13812345678"
)
FINANCE_TEXT = "某投资理财平台以高息为诱饵非法集资，现已暴雷无法提现，涉及投资人上千人，请求依法立案追缴资金。"


def settings_for(tmp_path: Path, registry_root: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "registry": registry_root,
        "database_url": f"sqlite:///{tmp_path / 'api.db'}",
        "api_keys": KEYS,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def client(tmp_path: Path, registry_root: Path, database_url: str) -> Iterator[TestClient]:
    """The app on an empty database: every test that takes it runs on SQLite and on PostgreSQL."""
    with TestClient(create_app(settings_for(tmp_path, registry_root, database_url=database_url))) as test_client:
        yield test_client


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and error["message_en"]
    return error


def submit(client: TestClient, text: str = HOUSING_TEXT, headers: dict[str, str] = CLERK, **fields: Any) -> Any:
    return client.post("/v1/petitions", json={"text": text, "channel": "web", **fields}, headers=headers)


# -- health, auth ----------------------------------------------------------------------------------


def test_health_and_readiness_are_open_and_metrics_take_a_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] is True and ready.json()["model_version"]
    submit(client)
    client.post("/v1/classify", json={"text": FINANCE_TEXT}, headers=CLERK)
    metrics = client.get("/metrics", headers=HOUSING)
    assert metrics.status_code == 200
    body = metrics.text
    assert 'triage_http_requests_total{method="POST",route="/v1/petitions",status="201"} 1.0' in body
    assert "triage_http_request_duration_seconds_bucket" in body
    assert 'triage_queue_depth{queue="housing",state="queued"} 1.0' in body
    assert 'triage_predictions_total{head="domain",label="finance"}' in body
    assert "triage_model_info{version=" in body


def test_missing_or_wrong_key_is_401_and_bearer_works(client: TestClient) -> None:
    assert_error(client.get("/v1/queues"), 401, "unauthorized")
    assert_error(client.get("/v1/queues", headers={"X-API-Key": "nope"}), 401, "unauthorized")
    assert_error(client.get("/v1/queues", headers={"X-API-Key": "dev-clerk"}), 401, "unauthorized")
    assert client.get("/v1/queues", headers={"Authorization": "Bearer k-clerk"}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        ("post", "/v1/classify", HOUSING, {"text": "x"}),
        ("post", "/v1/petitions", HOUSING, {"text": "x", "channel": "web"}),
        ("post", "/v1/petitions/batch", FINANCE, {"items": [{"text": "x", "channel": "web"}]}),
        ("post", "/v1/petitions/1/route", HOUSING, {"department": "housing"}),
        ("post", "/v1/model/reload", CLERK, None),
        ("post", "/v1/model/reload", HOUSING, None),
        ("post", "/v1/queues/housing/claim", CLERK, None),
        ("post", "/v1/queues/housing/claim", FINANCE, None),
        ("get", "/v1/queues/housing", FINANCE, None),
    ],
)
def test_roles_that_may_not_get_403(
    client: TestClient, method: str, path: str, headers: dict[str, str], body: Any
) -> None:
    assert_error(client.request(method.upper(), path, json=body, headers=headers), 403, "forbidden")


def test_dev_keys_apply_only_without_configured_keys(tmp_path: Path, registry_root: Path) -> None:
    settings = settings_for(tmp_path, registry_root, api_keys=None)
    with TestClient(create_app(settings)) as dev:
        assert dev.get("/v1/queues", headers={"X-API-Key": "dev-clerk"}).status_code == 200
        housing = dev.get("/v1/queues", headers={"X-API-Key": "dev-dept-housing"}).json()["queues"]
        assert [queue["queue"] for queue in housing] == ["housing"]


def test_database_outage_fails_readiness_and_answers_503_then_recovers(
    tmp_path: Path, registry_root: Path, postgres: PostgresCluster
) -> None:
    """The database host goes down under a running service: /readyz says so, every request that needs the
    database gets the standard error body with 503 (never a 500), and service resumes when it is back."""
    settings = settings_for(tmp_path, registry_root, database_url=postgres.create_schema(), db_connect_timeout=2)
    with TestClient(create_app(settings)) as test_client:
        petition_id = submit(test_client, external_id="OUT-1").json()["id"]
        postgres.pause()
        try:
            ready = test_client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["database"] is False
            assert test_client.get("/healthz").status_code == 200  # alive: no restart needed
            for response in (
                submit(test_client, external_id="OUT-2"),
                test_client.post(
                    "/v1/petitions/batch", json={"items": [{"text": FINANCE_TEXT, "channel": "web"}]}, headers=CLERK
                ),
                test_client.get(f"/v1/petitions/{petition_id}", headers=CLERK),
                test_client.get("/v1/queues", headers=CLERK),
                test_client.post("/v1/queues/housing/claim", headers=HOUSING),
                route_to(test_client, petition_id, "housing"),
                test_client.post("/v1/classify", json={"text": FINANCE_TEXT}, headers=CLERK),  # reads similar ones
            ):
                assert_error(response, 503, "database_unavailable")
                assert response.headers["Retry-After"]
        finally:
            postgres.resume()
        assert test_client.get("/readyz").status_code == 200
        again = submit(test_client, external_id="OUT-2")
        assert again.status_code == 201, again.text
        assert test_client.get(f"/v1/petitions/{petition_id}", headers=CLERK).status_code == 200


# -- classify ----------------------------------------------------------------------------------------


def test_classify_returns_route_explanation_and_stores_nothing(client: TestClient) -> None:
    response = client.post("/v1/classify", json={"text": FINANCE_TEXT}, headers=CLERK)
    assert response.status_code == 200
    body = response.json()
    assert body["domain"]["label"] == "finance" and body["domain"]["name"] == "涉众金融"
    assert 0 <= body["domain"]["confidence"] <= 1 and body["domain"]["threshold"] > 0
    assert len(body["department"]["ranking"]) == 3
    assert body["department"]["ranking"][0]["label"] == body["department"]["label"]
    assert isinstance(body["needs_review"], bool)
    assert body["model_version"] == client.get("/v1/model", headers=CLERK).json()["version"]
    assert body["explanation"] and all(term["term"] in body["masked_text"] for term in body["explanation"])
    assert body["suggested_queue"] in ("finance_regulation", "manual_triage") or body["needs_review"] is False
    masked = client.post("/v1/classify", json={"text": HOUSING_TEXT}, headers=ADMIN).json()["masked_text"]
    assert "13812345678" not in masked
    counts = client.get("/v1/queues", headers=CLERK).json()["queues"]
    assert sum(queue["open"] for queue in counts) == 0


def test_hot_routes_answer_exactly_their_response_model(client: TestClient) -> None:
    """classify and submit write their schema objects themselves (service/api/responses.py), skipping
    FastAPI's second validation: the JSON must still be what `response_model` would have produced."""
    classified = client.post("/v1/classify", json={"text": HOUSING_TEXT}, headers=CLERK)
    first = client.post(
        "/v1/petitions", json={"text": HOUSING_TEXT, "channel": "web", "external_id": "x-1"}, headers=CLERK
    )
    repeat = client.post(
        "/v1/petitions", json={"text": HOUSING_TEXT, "channel": "web", "external_id": "x-1"}, headers=CLERK
    )
    batch = client.post(
        "/v1/petitions/batch",
        json={"items": [{"text": FINANCE_TEXT, "channel": "web"}, {"text": "", "channel": "web"}]},
        headers=CLERK,
    )
    answers = [
        (classified, 200, ClassifyOut),
        (first, 201, SubmitOut),
        (repeat, 200, SubmitOut),
        (batch, 200, BatchOut),
    ]
    for response, status, schema in answers:
        assert response.status_code == status and response.headers["content-type"] == "application/json"
        assert schema.model_validate(response.json()).model_dump(mode="json") == response.json()
    assert first.headers["location"] == repeat.headers["location"] == f"/v1/petitions/{first.json()['id']}"
    assert repeat.json()["created"] is False and repeat.json()["id"] == first.json()["id"]
    assert [item["ok"] for item in batch.json()["items"]] == [True, False]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": ""}, 422, "empty_text"),
        ({"text": " \n\t\u3000 "}, 422, "empty_text"),
        ({"text": "长" * 20_001}, 422, "text_too_long"),
        ({"text": 123}, 422, "validation_error"),
        ({"text": ["a"]}, 422, "validation_error"),
        ({}, 422, "missing"),
        ([], 422, "validation_error"),
    ],
)
def test_classify_rejects_bad_input(client: TestClient, body: Any, status: int, code: str) -> None:
    assert_error(client.post("/v1/classify", json=body, headers=CLERK), status, code)


def test_classify_accepts_the_maximum_length(client: TestClient) -> None:
    text = (FINANCE_TEXT * 400)[:20_000]
    assert client.post("/v1/classify", json={"text": text}, headers=CLERK).status_code == 200


def test_invalid_json_and_unknown_routes(client: TestClient) -> None:
    for raw in (b"{not json", b'{"text": "a"', b"\xff\xfe"):
        response = client.post("/v1/classify", content=raw, headers={**CLERK, "Content-Type": "application/json"})
        assert_error(response, 400, "invalid_json")
    assert_error(client.get("/v1/nothing-here", headers=CLERK), 404, "not_found")
    assert_error(client.delete("/v1/classify", headers=CLERK), 405, "method_not_allowed")


def test_body_over_the_limit_is_413(tmp_path: Path, registry_root: Path) -> None:
    with TestClient(create_app(settings_for(tmp_path, registry_root, max_body_bytes=2_000))) as small:
        assert_error(small.post("/v1/classify", json={"text": "长" * 1_000}, headers=CLERK), 413, "body_too_large")

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked upload
            yield b'{"text": "'
            for _ in range(10):
                yield "长".encode() * 100
            yield b'"}'

        response = small.post("/v1/classify", content=chunks(), headers={**CLERK, "Content-Type": "application/json"})
        assert_error(response, 413, "body_too_large")
        assert small.post("/v1/classify", json={"text": "开发商逾期交房"}, headers=CLERK).status_code == 200


# -- submit, read ------------------------------------------------------------------------------------


def test_submit_stores_enqueues_and_sets_the_due_date(client: TestClient) -> None:
    received = "2026-03-02T09:30:00+08:00"
    response = submit(client, received_at=received, external_id="XF-1")
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/petitions/{body['id']}"
    assert body["created"] is True and body["status"] == "queued"
    start = datetime.fromisoformat(received)
    assert datetime.fromisoformat(body["received_at"]) == start
    assert datetime.fromisoformat(body["due_at"]) == start + timedelta(days=15)
    suggestion = body["suggestion"]
    expected_queue = "manual_triage" if suggestion["needs_review"] else suggestion["department"]["label"]
    assert body["queue"] == expected_queue
    petition = client.get(f"/v1/petitions/{body['id']}", headers=CLERK).json()
    assert petition["text"] == HOUSING_TEXT and petition["text_visible"] is True
    assert "13812345678" not in petition["masked_text"] and "【电话】" in petition["masked_text"]
    assert all(term["term"] in petition["masked_text"] for term in petition["prediction"]["explanation"])
    assert petition["history"][0]["action"] == "submitted" and petition["history"][0]["actor"] == "clerk-1"
    assert petition["overdue"] is True  # received in March 2026, never handed over


def test_naive_received_at_is_china_time_and_future_is_rejected(client: TestClient) -> None:
    body = submit(client, received_at="2026-03-02T09:30:00").json()
    assert body["received_at"] == "2026-03-02T01:30:00Z"
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert_error(submit(client, "另一件", received_at=future), 422, "received_in_future")


def test_repeats_return_the_original_never_a_copy(client: TestClient) -> None:
    first = submit(client, external_id="XF-7")
    again = submit(client, external_id="XF-7")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["created"] is False
    keyed = submit(client, FINANCE_TEXT, headers={**CLERK, "Idempotency-Key": "req-1"})
    keyed_again = submit(client, FINANCE_TEXT, headers={**CLERK, "Idempotency-Key": "req-1"})
    assert keyed.status_code == 201 and keyed_again.status_code == 200
    assert keyed_again.json()["id"] == keyed.json()["id"]
    assert_error(submit(client, "内容不同", external_id="XF-7"), 409, "idempotency_conflict")
    assert_error(submit(client, "内容不同", headers={**CLERK, "Idempotency-Key": "req-1"}), 409, "idempotency_conflict")
    counts = client.get("/v1/queues", headers=CLERK).json()["queues"]
    assert sum(queue["open"] for queue in counts) == 2


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"channel": "fax"}, "validation_error"),
        ({"channel": None}, "validation_error"),
        ({"received_at": "yesterday"}, "validation_error"),
        ({"external_id": ""}, "validation_error"),
        ({"external_id": "x" * 201}, "validation_error"),
        ({"text": "   "}, "empty_text"),
    ],
)
def test_submit_rejects_bad_fields(client: TestClient, fields: dict[str, Any], code: str) -> None:
    assert_error(
        client.post("/v1/petitions", json={"text": HOUSING_TEXT, "channel": "web", **fields}, headers=CLERK), 422, code
    )
    assert_error(client.post("/v1/petitions", json={"text": HOUSING_TEXT}, headers=CLERK), 422, "missing")


def test_unknown_or_malformed_petition_ids(client: TestClient) -> None:
    assert_error(client.get("/v1/petitions/424242", headers=CLERK), 404, "petition_not_found")
    assert_error(client.get(f"/v1/petitions/{2**62}", headers=CLERK), 404, "petition_not_found")  # > int4
    assert_error(client.get("/v1/petitions/abc", headers=CLERK), 422, "validation_error")
    assert_error(client.get("/v1/petitions/0", headers=CLERK), 422, "validation_error")
    assert_error(client.get(f"/v1/petitions/{2**70}", headers=CLERK), 422, "validation_error")
    assert_error(
        client.post("/v1/petitions/424242/route", json={"department": "housing"}, headers=CLERK),
        404,
        "petition_not_found",
    )
    assert_error(
        client.post("/v1/petitions/424242/close", json={"resolution": "x"}, headers=CLERK), 404, "petition_not_found"
    )


def test_uncertain_petitions_go_to_manual_triage(tmp_path: Path, registry_root: Path) -> None:
    strict = settings_for(tmp_path, registry_root, thresholds={"domain": 1.01})  # nothing is confident enough
    with TestClient(create_app(strict)) as test_client:
        body = submit(test_client).json()
        assert body["queue"] == "manual_triage" and body["suggestion"]["needs_review"] is True
        model = test_client.get("/v1/model", headers=CLERK).json()
        assert model["thresholds"]["domain"] == 1.01


# -- batch -------------------------------------------------------------------------------------------


def test_batch_validates_each_item_on_its_own(client: TestClient) -> None:
    items = [
        {"text": HOUSING_TEXT, "channel": "letter", "external_id": "B-1"},
        {"text": "", "channel": "letter"},
        {"text": FINANCE_TEXT, "channel": "fax"},
        "not an object",
        {"text": "长" * 20_001, "channel": "web"},
        {"text": HOUSING_TEXT, "channel": "letter", "external_id": "B-1"},
        {"text": FINANCE_TEXT, "channel": "phone", "external_id": "B-2"},
        {"text": "不同内容", "channel": "phone", "external_id": "B-2"},
    ]
    response = client.post("/v1/petitions/batch", json={"items": items}, headers=CLERK)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["received"], body["created"], body["duplicates"], body["failed"]) == (8, 2, 1, 5)
    results = body["items"]
    assert [item["index"] for item in results] == list(range(8))
    assert [item["ok"] for item in results] == [True, False, False, False, False, True, True, False]
    assert results[1]["error"]["code"] == "empty_text"
    assert results[2]["error"]["code"] == "validation_error"
    assert results[4]["error"]["code"] == "text_too_long"
    assert results[7]["error"]["code"] == "idempotency_conflict"
    assert results[5]["petition"]["id"] == results[0]["petition"]["id"] and not results[5]["petition"]["created"]
    stored = client.get(f"/v1/petitions/{results[6]['petition']['id']}", headers=CLERK).json()
    assert stored["text"] == FINANCE_TEXT and stored["channel"] == "phone"


def test_batch_limits(client: TestClient) -> None:
    assert_error(client.post("/v1/petitions/batch", json={"items": []}, headers=CLERK), 422, "batch_empty")
    too_many = {"items": [{"text": "x", "channel": "web"}] * 1_001}
    assert_error(client.post("/v1/petitions/batch", json=too_many, headers=CLERK), 422, "batch_too_large")
    assert_error(client.post("/v1/petitions/batch", json={"items": "x"}, headers=CLERK), 422, "validation_error")


# -- NUL: invisible, and PostgreSQL cannot store it in text ------------------------------------------


def request_models() -> list[type[BaseModel]]:
    """Every request body model, and the search's query parameters."""
    bodies = [
        value
        for name, value in vars(schemas).items()
        if name.endswith("In") and isinstance(value, type) and issubclass(value, BaseModel)
    ]
    return [*bodies, SearchIn]


def takes_text(annotation: Any) -> bool:
    return annotation is str or any(takes_text(argument) for argument in get_args(annotation))


def test_every_string_a_request_carries_drops_nul() -> None:
    """The rule behind the tests below, for fields added later too: each string field is `schemas.Text`."""
    checked = []
    for model in request_models():
        for name, field in model.model_fields.items():
            if takes_text(field.annotation):
                field_type = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
                adapter: TypeAdapter[Any] = TypeAdapter(field_type)
                assert adapter.validate_python("ho\x00using") == "housing", f"{model.__name__}.{name}"
                checked.append(f"{model.__name__}.{name}")
    assert {"SubmitIn.text", "SubmitIn.external_id", "NoteIn.note", "CloseIn.resolution", "SearchIn.q"} <= set(checked)


def test_nul_in_a_submission_is_dropped_and_the_petition_stored(client: TestClient) -> None:
    with_nul = HOUSING_TEXT.replace("开发商", "开发\x00商", 1) + "\x00"
    response = submit(
        client,
        with_nul,
        external_id="XF-\x00001",
        petitioner_name="张\x00三",
        petitioner_contact="13800000001\x00",
        address="某市\x00某区",
    )
    assert response.status_code == 201, response.text
    petition = client.get(f"/v1/petitions/{response.json()['id']}", headers=ADMIN).json()
    assert petition["text"] == HOUSING_TEXT and petition["external_id"] == "XF-001"
    assert (petition["petitioner"]["name"], petition["petitioner"]["address"]) == ("张三", "某市某区")
    again = submit(client, HOUSING_TEXT, external_id="XF-001")  # the same petition, as stored
    assert again.status_code == 200 and again.json()["id"] == petition["id"]
    assert_error(submit(client, "\x00", external_id="XF-2"), 422, "empty_text")
    assert_error(submit(client, FINANCE_TEXT, external_id="\x00"), 422, "validation_error")


def test_a_batch_with_nul_in_one_item_stores_every_valid_item(client: TestClient) -> None:
    items = [
        {"text": HOUSING_TEXT, "channel": "letter"},
        {"text": FINANCE_TEXT.replace("平台", "平\x00台"), "channel": "web", "petitioner_name": "李\x00四"},
        {"text": "\x00\x00", "channel": "web"},
    ]
    response = client.post("/v1/petitions/batch", json={"items": items}, headers=CLERK)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["failed"]) == (2, 1)
    assert body["items"][2]["error"]["code"] == "empty_text"
    stored = client.get(f"/v1/petitions/{body['items'][1]['petition']['id']}", headers=ADMIN).json()
    assert stored["text"] == FINANCE_TEXT and stored["petitioner"]["name"] == "李四"


def test_nul_in_search_notes_routes_and_closing_is_dropped(client: TestClient) -> None:
    petition_id = submit(client).json()["id"]
    found = client.get("/v1/petitions", params={"q": "开发\x00商"}, headers=CLERK)
    assert found.status_code == 200, found.text
    assert [item["id"] for item in found.json()["items"]] == [petition_id]
    export = client.get("/v1/petitions/export.xlsx", params={"q": "开发\x00商"}, headers=CLERK)
    assert export.status_code == 200, export.text
    noted = client.post(f"/v1/petitions/{petition_id}/notes", json={"note": "已\x00电话联系"}, headers=CLERK)
    assert noted.status_code == 200, noted.text
    assert noted.json()["history"][-1]["note"] == "已电话联系"
    assert_error(
        client.post(f"/v1/petitions/{petition_id}/notes", json={"note": "\x00"}, headers=CLERK), 422, "empty_note"
    )
    routed = route_to(client, petition_id, "hou\x00sing", note="转\x00住建")
    assert routed.status_code == 200, routed.text
    assert routed.json()["queue"] == "housing" and routed.json()["history"][-1]["note"] == "转住建"
    claimed = client.post("/v1/queues/housing/claim", json={"worker": "w\x001"}, headers=ADMIN)
    assert claimed.status_code == 200 and claimed.json()["lease"]["owner"] == "admin-1/w1"
    closed = client.post(
        f"/v1/petitions/{petition_id}/close",
        json={"resolution": "已督促\x00交房", "reply_summary": "已\x00答复"},
        headers=ADMIN,
    )
    assert closed.status_code == 200, closed.text
    assert (closed.json()["resolution"], closed.json()["reply_summary"]) == ("已督促交房", "已答复")


def test_a_value_the_database_rejects_is_a_422_not_a_500(
    tmp_path: Path, registry_root: Path, postgres: PostgresCluster
) -> None:
    """Past validation, e.g. a NUL from a caller of the store that does not drop it: PostgreSQL's DataError
    is the store's `RejectedValue`, answered in the error shape, and nothing is stored."""
    app = create_app(settings_for(tmp_path, registry_root, database_url=postgres.create_schema()))

    def store_unchecked(store: StoreDep) -> None:
        store.submit(submission("开发商逾期\x00交房"))

    app.add_api_route("/test/unchecked", store_unchecked, methods=["POST"])
    with TestClient(app) as test_client:
        assert_error(test_client.post("/test/unchecked"), 422, "rejected_value")
        assert test_client.get("/v1/petitions", headers=CLERK).json()["total"] == 0
        assert submit(test_client).status_code == 201


# -- queues, claim, department visibility ------------------------------------------------------------


def route_to(client: TestClient, petition_id: int, department: str, **fields: Any) -> Any:
    return client.post(f"/v1/petitions/{petition_id}/route", json={"department": department, **fields}, headers=CLERK)


def test_queue_listing_counts_and_pagination(client: TestClient) -> None:
    ids = []
    for days in (1, 5, 3):
        received = (datetime.now(UTC) - timedelta(days=days)).isoformat()
        ids.append(submit(client, f"{HOUSING_TEXT} 第{days}件", received_at=received).json()["id"])
    for petition_id in ids:
        route_to(client, petition_id, "housing")
    page = client.get("/v1/queues/housing?limit=2", headers=CLERK).json()
    assert page["total"] == 3 and page["name"] == "住房和城乡建设局"
    assert [item["id"] for item in page["items"]] == [ids[1], ids[2]]  # oldest due first
    rest = client.get("/v1/queues/housing?limit=2&offset=2", headers=HOUSING).json()
    assert [item["id"] for item in rest["items"]] == [ids[0]]
    assert "13812345678" not in rest["items"][0]["preview"]
    assert client.get("/v1/queues/housing?status=claimed", headers=CLERK).json()["total"] == 0
    counts = {queue["queue"]: queue for queue in client.get("/v1/queues", headers=ADMIN).json()["queues"]}
    assert counts["housing"]["routed"] == 3 and counts["manual_triage"]["open"] == 0
    assert set(counts) >= {"housing", "finance_regulation", "manual_triage"}
    only_own = client.get("/v1/queues", headers=FINANCE).json()["queues"]
    assert [queue["queue"] for queue in only_own] == ["finance_regulation"]
    assert_error(client.get("/v1/queues/nowhere", headers=CLERK), 404, "unknown_queue")
    assert_error(client.get("/v1/queues/housing?limit=0", headers=CLERK), 422, "validation_error")
    assert_error(client.get("/v1/queues/housing?limit=201", headers=CLERK), 422, "validation_error")
    assert_error(client.get("/v1/queues/housing?status=closed", headers=CLERK), 422, "validation_error")


def test_department_claims_its_queue_and_sees_text_once_handed_over(client: TestClient) -> None:
    petition_id = submit(client).json()["id"]
    moved = client.post(f"/v1/petitions/{petition_id}/route", json={"department": "housing"}, headers=ADMIN)
    assert moved.status_code == 200
    other = submit(client, FINANCE_TEXT).json()["id"]
    client.post(f"/v1/petitions/{other}/route", json={"department": "finance_regulation"}, headers=CLERK)
    assert_error(client.get(f"/v1/petitions/{other}", headers=HOUSING), 404, "petition_not_found")
    claimed = client.post("/v1/queues/housing/claim", json={"lease_seconds": 120}, headers=HOUSING)
    assert claimed.status_code == 200, claimed.text
    body = claimed.json()
    assert body["id"] == petition_id and body["status"] == "claimed"
    assert body["lease"]["owner"] == "housing-1" and body["text"] == HOUSING_TEXT
    assert client.post("/v1/queues/housing/claim", headers=HOUSING).status_code == 204
    assert_error(client.post("/v1/queues/nowhere/claim", headers=ADMIN), 404, "unknown_queue")
    assert_error(
        client.post("/v1/queues/housing/claim", json={"lease_seconds": 0}, headers=HOUSING), 422, "validation_error"
    )


def test_department_sees_only_masked_text_before_hand_over(client: TestClient) -> None:
    body = submit(client).json()
    if body["queue"] != "housing":
        pytest.skip("the model did not auto-route this text to housing")
    seen = client.get(f"/v1/petitions/{body['id']}", headers=HOUSING).json()
    assert seen["text_visible"] is False and seen["text"] is None
    assert "【电话】" in seen["masked_text"]
    assert_error(client.get(f"/v1/petitions/{body['id']}", headers=FINANCE), 404, "petition_not_found")


def test_clerk_claims_manual_triage_and_leases_expire(client: TestClient) -> None:
    petition_id = submit(client).json()["id"]
    client.post(f"/v1/petitions/{petition_id}/route", json={"department": "housing"}, headers=CLERK)
    first = client.post("/v1/queues/housing/claim", json={"lease_seconds": 1, "worker": "w1"}, headers=ADMIN)
    assert first.json()["lease"]["owner"] == "admin-1/w1"
    assert client.post("/v1/queues/housing/claim", headers=HOUSING).status_code == 204
    time.sleep(1.2)
    second = client.post("/v1/queues/housing/claim", headers=HOUSING)
    assert second.status_code == 200 and second.json()["id"] == petition_id
    assert second.json()["history"][-1]["details"]["expired_lease_of"] == "admin-1/w1"
    assert client.post("/v1/queues/manual_triage/claim", headers=CLERK).status_code == 204


# -- route, close, feedback, overdue ----------------------------------------------------------------


def test_route_correction_is_recorded_as_feedback(client: TestClient) -> None:
    body = submit(client).json()
    predicted = body["suggestion"]["department"]["label"]
    target = "natural_resources" if predicted != "natural_resources" else "housing"
    response = route_to(client, body["id"], target, domain="other", note="产权登记问题")
    assert response.status_code == 200, response.text
    routed = response.json()
    assert routed["status"] == "routed" and routed["queue"] == target
    assert routed["route"]["department"] == target and routed["route"]["routed_by"] == "clerk-1"
    assert routed["history"][-1]["action"] == "corrected" and routed["history"][-1]["note"] == "产权登记问题"
    [feedback] = client.app.state.store.feedback()  # type: ignore[attr-defined]
    assert feedback.decision in ("corrected", "rerouted") and feedback.actor == "clerk-1"
    assert feedback.corrected_department == target and feedback.predicted_department == predicted
    assert feedback.model_version == body["suggestion"]["model_version"]
    assert "13812345678" not in feedback.masked_text
    confirm = route_to(client, submit(client, FINANCE_TEXT).json()["id"], "finance_regulation", domain="finance")
    assert confirm.status_code == 200
    assert len(client.app.state.store.feedback()) == 2  # type: ignore[attr-defined]  # acceptances count too


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"department": "mars_office"}, "unknown_department"),
        ({"department": "manual_triage"}, "unknown_department"),
        ({"department": "housing", "domain": "astrology"}, "unknown_domain"),
        ({"department": 5}, "validation_error"),
        ({}, "missing"),
    ],
)
def test_route_rejects_unknown_labels(client: TestClient, fields: dict[str, Any], code: str) -> None:
    petition_id = submit(client).json()["id"]
    assert_error(client.post(f"/v1/petitions/{petition_id}/route", json=fields, headers=CLERK), 422, code)


def test_close_by_department_and_closed_is_final(client: TestClient) -> None:
    petition_id = submit(client).json()["id"]
    route_to(client, petition_id, "housing")
    assert_error(
        client.post(f"/v1/petitions/{petition_id}/close", json={"resolution": "x"}, headers=FINANCE),
        404,
        "petition_not_found",
    )
    assert_error(
        client.post(f"/v1/petitions/{petition_id}/close", json={"resolution": "  "}, headers=HOUSING),
        422,
        "empty_resolution",
    )
    closed = client.post(f"/v1/petitions/{petition_id}/close", json={"resolution": "已督促交房"}, headers=HOUSING)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert closed.json()["resolution"] == "已督促交房" and closed.json()["overdue"] is False
    assert_error(
        client.post(f"/v1/petitions/{petition_id}/close", json={"resolution": "again"}, headers=CLERK),
        409,
        "petition_closed",
    )
    assert_error(route_to(client, petition_id, "housing"), 409, "petition_closed")


def test_overdue_until_the_department_accepts(client: TestClient) -> None:
    received = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    body = submit(client, received_at=received).json()
    assert body["overdue"] is True
    counts = {queue["queue"]: queue for queue in client.get("/v1/queues", headers=CLERK).json()["queues"]}
    assert counts[body["queue"]]["overdue"] == 1
    routed = route_to(client, body["id"], "housing").json()
    assert routed["overdue"] is True and routed["route"]["handed_over_at"] is not None
    accepted = client.post(f"/v1/petitions/{body['id']}/accept", headers=HOUSING).json()
    assert accepted["overdue"] is False and accepted["status"] == "accepted"


# -- model -------------------------------------------------------------------------------------------


def test_model_info(client: TestClient) -> None:
    info = client.get("/v1/model", headers=HOUSING).json()
    assert info["version"] and set(info["heads"]) == {"domain", "department"}
    labels = {label["label"]: label["name"] for label in info["heads"]["department"]["labels"]}
    assert labels["housing"] == "住房和城乡建设局"
    assert "accuracy" in info["metrics"]["test"]["domain"]
    assert info["thresholds"]["domain"] == info["heads"]["domain"]["threshold"]
    assert_error(client.get("/v1/model"), 401, "unauthorized")


def republished_registry(source: Path, target: Path) -> Registry:
    """A registry holding the session model twice under two versions (the model files are linked, not copied)."""
    registry = Registry(target)
    for version in ("v-one", "v-two"):
        folder = target / version
        folder.mkdir(parents=True)
        manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
        manifest["version"] = version
        (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        for name in ("model.skops", "flags.npz"):
            (folder / name).symlink_to(source / name)
    registry.promote("v-one")
    return registry


def test_reload_swaps_without_dropping_requests(tmp_path: Path, trained: Any) -> None:
    registry = republished_registry(trained.folder, tmp_path / "registry")
    settings = settings_for(tmp_path, registry.root)
    with TestClient(create_app(settings)) as test_client:
        assert test_client.get("/v1/model", headers=CLERK).json()["version"] == "v-one"
        statuses: list[int] = []
        versions: set[str] = set()
        stop = threading.Event()

        def classify() -> None:
            while not stop.is_set():
                response = test_client.post("/v1/classify", json={"text": FINANCE_TEXT}, headers=CLERK)
                statuses.append(response.status_code)
                versions.add(response.json().get("model_version", "?"))

        workers = [threading.Thread(target=classify) for _ in range(4)]
        for worker in workers:
            worker.start()
        registry.promote("v-two")
        reloaded = test_client.post("/v1/model/reload", headers=ADMIN)
        after = test_client.post("/v1/classify", json={"text": FINANCE_TEXT}, headers=CLERK).json()
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json() == {"previous_version": "v-one", "version": "v-two", "changed": True}
        assert after["model_version"] == "v-two"
        assert statuses and set(statuses) == {200} and versions <= {"v-one", "v-two"}
        assert test_client.get("/readyz").json()["model_version"] == "v-two"

        (registry.root / "CURRENT").write_text("v-missing\n", encoding="utf-8")
        assert_error(test_client.post("/v1/model/reload", headers=ADMIN), 503, "model_reload_failed")
        assert test_client.get("/v1/model", headers=CLERK).json()["version"] == "v-two"
        shutil.rmtree(registry.root / "v-one")


def test_replica_follows_a_promotion_without_a_reload_call(tmp_path: Path, trained: Any) -> None:
    """Each replica polls the registry's CURRENT pointer: `triage promote` alone switches it (verified load);
    a pointer to a broken version leaves the model in service untouched."""
    registry = republished_registry(trained.folder, tmp_path / "registry")
    settings = settings_for(tmp_path, registry.root, model_poll_seconds=0.1)

    def version_within(seconds: float, expected: str) -> str:
        deadline = time.monotonic() + seconds
        while True:
            version: str = test_client.get("/v1/model", headers=CLERK).json()["version"]
            if version == expected or time.monotonic() > deadline:
                return version
            time.sleep(0.05)

    with TestClient(create_app(settings)) as test_client:
        assert version_within(0, "v-one") == "v-one"
        registry.promote("v-two")
        assert version_within(10, "v-two") == "v-two"
        metrics = test_client.get("/metrics", headers=ADMIN).text
        assert 'triage_model_info{version="v-two"} 1.0' in metrics
        (registry.root / "v-one" / "manifest.json").write_text("{}", encoding="utf-8")  # not a loadable model
        registry.promote("v-one")
        time.sleep(0.5)
        assert version_within(0, "v-two") == "v-two"
        assert test_client.post("/v1/classify", json={"text": FINANCE_TEXT}, headers=CLERK).status_code == 200


# -- logs ----------------------------------------------------------------------------------------------


def test_logs_are_json_lines_without_text_or_keys(client: TestClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger("triage").addHandler(handler)
    try:
        petition_id = submit(client, external_id="LOG-1").json()["id"]
        client.post("/v1/classify", json={"text": FINANCE_TEXT}, headers=CLERK)
        client.post("/v1/petitions/batch", json={"items": [{"text": HOUSING_TEXT, "channel": "web"}]}, headers=CLERK)
        route_to(client, petition_id, "natural_resources", note="备注含电话13900001111")
        client.post("/v1/classify", content=b"{bad", headers={**CLERK, "Content-Type": "application/json"})
        client.get("/v1/queues", headers={"X-API-Key": "guess-me"})
    finally:
        logging.getLogger("triage").removeHandler(handler)
    lines = stream.getvalue().strip().splitlines()
    records = [json.loads(line) for line in lines]
    events = {record["event"] for record in records}
    assert {
        "petition.submitted",
        "petition.classified",
        "petition.batch_submitted",
        "petition.routed",
        "http.request",
    } <= events
    submitted = next(record for record in records if record["event"] == "petition.submitted")
    assert submitted["petition_id"] == petition_id and "domain_confidence" in submitted and "ms" in submitted
    everything = stream.getvalue()
    for secret in ("13812345678", "13900001111", "开发商", "非法集资", "k-clerk", "guess-me"):
        assert secret not in everything


def test_console_vocabulary_and_permissions_come_from_the_server(client: TestClient) -> None:
    """The console keeps no copies: labels and the permission map are served from the enums and auth."""
    from service.auth import PERMISSIONS
    from store import Action, Channel, Role, Status

    meta = client.get("/console/taxonomy.json", headers=CLERK).json()
    assert meta["statuses"] == {status.value: status.label for status in Status}
    assert meta["channels"] == {channel.value: channel.label for channel in Channel}
    assert meta["actions"] == {action.value: action.label for action in Action}
    assert meta["roles"]["clerk"] == "登记员" and meta["manual_triage"] == {"id": "manual_triage", "name": "人工分流"}
    assert set(meta["permissions"]) == {"clerk", "department", "admin"}
    assert meta["permissions"]["department"] == sorted(PERMISSIONS[Role.DEPARTMENT])
    script = (Path(__file__).resolve().parents[1] / "service" / "static" / "console.js").read_text(encoding="utf-8")
    for copied in ("待确认", "已办结", "来信", "来访", 'clerk: "', '=== "clerk"', '=== "admin"', '"manual_triage"'):
        assert copied not in script, copied
