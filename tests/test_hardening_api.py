"""Hardening of the HTTP API (issue 12): each reproduction from the attack probe, as a test that failed
before its fix. TestClient with the lifespan, the session's trained model, one SQLite file per test."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from model.registry import Registry, RegistryError
from service.app import create_app
from tests.test_api import (
    ADMIN,
    CLERK,
    FINANCE,
    FINANCE_TEXT,
    HOUSING,
    HOUSING_TEXT,
    assert_error,
    route_to,
    settings_for,
    submit,
)

# Thresholds of zero make the model auto-route everything it is sure of nothing about: the text goes
# straight to the suggested department's queue, as a confident suggestion would.
AUTO_ROUTE = {"domain": 0.0, "department": 0.0}


@pytest.fixture
def client(tmp_path: Path, registry_root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(tmp_path, registry_root, thresholds=AUTO_ROUTE))) as test_client:
        yield test_client


def suggested_to_housing(client: TestClient) -> int:
    body = submit(client).json()
    assert body["queue"] == "housing", body
    return int(body["id"])


# -- 1. dates near year 1 ---------------------------------------------------------------------------


def test_received_at_near_year_one_is_a_422_not_a_500(client: TestClient) -> None:
    for value in ("0001-01-01T00:00:00+08:00", "0001-01-01T00:00:00", "1899-12-31T00:00:00Z"):
        assert_error(submit(client, received_at=value), 422, "received_out_of_range")


def test_one_bad_date_fails_only_its_own_batch_item(client: TestClient) -> None:
    items = [
        {"text": HOUSING_TEXT, "channel": "web", "received_at": "0001-01-01T00:00:00+08:00"},
        {"text": FINANCE_TEXT, "channel": "web"},
    ]
    response = client.post("/v1/petitions/batch", json={"items": items}, headers=CLERK)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["created"] == 1 and body["failed"] == 1
    assert body["items"][0]["error"]["code"] == "received_out_of_range" and body["items"][1]["ok"] is True


@pytest.mark.parametrize(
    "query",
    ["received_from=0001-01-01", "received_to=9999-12-31", "received_from=1899-12-31", "received_to=9001-01-01"],
)
def test_search_dates_near_year_one_or_9999_are_a_422_not_a_500(client: TestClient, query: str) -> None:
    for path in ("/v1/petitions", "/v1/petitions/export.xlsx"):
        error = assert_error(client.get(f"{path}?{query}", headers=CLERK), 422, "date_out_of_range")
        assert error["message"] == "收件日期超出范围（1900 年至 9000 年）"
        assert error["details"][0]["field"].endswith(query.split("=")[0])


def test_search_dates_at_the_ends_of_the_range_are_accepted(client: TestClient) -> None:
    petition_id = submit(client).json()["id"]
    found = client.get("/v1/petitions?received_from=1900-01-01&received_to=9000-12-31", headers=CLERK)
    assert found.status_code == 200, found.text
    assert [item["id"] for item in found.json()["items"]] == [petition_id]
    export = client.get("/v1/petitions/export.xlsx?received_from=1900-01-01&received_to=9000-12-31", headers=CLERK)
    assert export.status_code == 200
    schema = client.get("/openapi.json").json()["paths"]["/v1/petitions"]["get"]["parameters"]
    received_to = next(parameter for parameter in schema if parameter["name"] == "received_to")
    assert received_to["schema"]["x-not-after"] == "9000-12-31"


# -- 3. departments see and close only what was handed to them ----------------------------------------


def test_claiming_a_suggested_item_does_not_reveal_its_text(client: TestClient) -> None:
    petition_id = suggested_to_housing(client)
    claimed = client.post("/v1/queues/housing/claim", headers=HOUSING)
    assert claimed.status_code == 200, claimed.text
    body = claimed.json()
    assert body["id"] == petition_id and body["text"] is None and body["text_visible"] is False
    assert "13812345678" not in json.dumps(body, ensure_ascii=False)
    again = client.get(f"/v1/petitions/{petition_id}", headers=HOUSING).json()
    assert again["text"] is None and "【电话】" in again["masked_text"]
    route_to(client, petition_id, "housing")  # a clerk confirms: now it is the department's
    assert client.get(f"/v1/petitions/{petition_id}", headers=HOUSING).json()["text"] == HOUSING_TEXT


def test_department_cannot_close_an_item_only_suggested_to_it(client: TestClient) -> None:
    petition_id = suggested_to_housing(client)
    close = {"resolution": "已办结"}
    assert_error(client.post(f"/v1/petitions/{petition_id}/close", json=close, headers=HOUSING), 409, "not_handed_over")
    client.post("/v1/queues/housing/claim", headers=HOUSING)
    assert_error(client.post(f"/v1/petitions/{petition_id}/close", json=close, headers=HOUSING), 409, "not_handed_over")
    assert client.get(f"/v1/petitions/{petition_id}", headers=CLERK).json()["status"] != "closed"


def test_department_accepts_only_what_a_clerk_handed_over(client: TestClient) -> None:
    """Accepting a suggestion used to start a handling clock on an item the department could then
    neither close nor read, and that no clerk could confirm any more: a dead end."""
    petition_id = suggested_to_housing(client)
    refused = assert_error(client.post(f"/v1/petitions/{petition_id}/accept", headers=HOUSING), 409, "not_handed_over")
    assert "不能受理" in refused["message"]
    assert client.get(f"/v1/petitions/{petition_id}", headers=CLERK).json()["status"] != "accepted"
    route_to(client, petition_id, "housing")
    accepted = client.post(f"/v1/petitions/{petition_id}/accept", headers=HOUSING)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    closed = client.post(f"/v1/petitions/{petition_id}/close", json={"resolution": "已答复"}, headers=HOUSING)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"


def test_a_department_reads_no_name_or_address_before_hand_over(client: TestClient) -> None:
    """The masked text used to repeat the petitioner's own name and address in full (no pattern finds a
    name), and a department could even search petitions by the name."""
    text = "我叫王建国，住幸福路8号3单元。" + HOUSING_TEXT
    body = submit(client, text=text, petitioner_name="王建国", address="幸福路8号").json()
    seen = client.get(f"/v1/petitions/{body['id']}", headers=HOUSING).json()
    assert seen["queue"] == "housing" and seen["text_visible"] is False
    assert "王建国" not in json.dumps(seen, ensure_ascii=False) and "幸福路8号" not in seen["masked_text"]
    assert seen["masked_text"].startswith("我叫【姓名】，住【地址】3单元。")
    assert seen["petitioner"]["name"] == "王**"
    assert client.get("/v1/petitions", params={"q": "王建国"}, headers=HOUSING).json()["total"] == 0
    assert client.get(f"/v1/petitions/{body['id']}", headers=CLERK).json()["text"] == text  # clerks: as written


def test_nobody_closes_an_item_leased_to_another_worker(client: TestClient) -> None:
    petition_id = suggested_to_housing(client)
    route_to(client, petition_id, "housing")
    claim = client.post("/v1/queues/housing/claim", json={"worker": "w1", "lease_seconds": 600}, headers=ADMIN)
    assert claim.json()["lease"]["owner"] == "admin-1/w1"
    close = {"resolution": "已办结"}
    for headers in (HOUSING, CLERK):
        assert_error(
            client.post(f"/v1/petitions/{petition_id}/close", json=close, headers=headers), 409, "leased_to_other"
        )
    closed = client.post(f"/v1/petitions/{petition_id}/close", json=close, headers=ADMIN)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"


def test_the_lease_holder_closes_its_own_claim(client: TestClient) -> None:
    petition_id = suggested_to_housing(client)
    route_to(client, petition_id, "housing")
    client.post("/v1/queues/housing/claim", json={"worker": "li"}, headers=HOUSING)
    closed = client.post(f"/v1/petitions/{petition_id}/close", json={"resolution": "已答复"}, headers=HOUSING)
    assert closed.status_code == 200, closed.text


# -- 8. smaller ---------------------------------------------------------------------------------------


def test_a_department_cannot_tell_other_queues_ids_from_missing_ones(client: TestClient) -> None:
    petition_id = suggested_to_housing(client)
    route_to(client, petition_id, "housing")
    missing = client.get("/v1/petitions/999999", headers=FINANCE)
    other = client.get(f"/v1/petitions/{petition_id}", headers=FINANCE)
    assert_error(other, 404, "petition_not_found")
    assert missing.status_code == other.status_code
    same_message = missing.json()["error"]["message_en"].replace("999999", str(petition_id))
    assert same_message == other.json()["error"]["message_en"]
    close = client.post(f"/v1/petitions/{petition_id}/close", json={"resolution": "x"}, headers=FINANCE)
    assert_error(close, 404, "petition_not_found")


@pytest.mark.parametrize("text", ["\u200b\u200b", "\x00\x00\x00", "\ufeff \u2060\u200d", "\u3000\x00\n"])
def test_invisible_only_text_is_empty(client: TestClient, text: str) -> None:
    assert_error(client.post("/v1/classify", json={"text": text}, headers=CLERK), 422, "empty_text")
    assert_error(submit(client, text), 422, "empty_text")


def test_blank_resolution_names_the_resolution(client: TestClient) -> None:
    petition_id = submit(client).json()["id"]
    error = assert_error(
        client.post(f"/v1/petitions/{petition_id}/close", json={"resolution": " \u200b "}, headers=CLERK),
        422,
        "empty_resolution",
    )
    assert error["message"] == "办理结果不能为空"


def test_max_text_chars_above_the_old_constant_is_honoured(tmp_path: Path, registry_root: Path) -> None:
    settings = settings_for(tmp_path, registry_root, max_text_chars=30_000)
    text = (FINANCE_TEXT * 600)[:25_000]
    with TestClient(create_app(settings)) as test_client:
        assert test_client.post("/v1/classify", json={"text": text}, headers=CLERK).status_code == 200
        too_long = test_client.post("/v1/classify", json={"text": "长" * 30_001}, headers=CLERK)
        assert_error(too_long, 422, "text_too_long")
        schema = test_client.get("/openapi.json").json()["components"]["schemas"]
        assert schema["ClassifyIn"]["properties"]["text"]["maxLength"] == 30_000


def test_openapi_declares_the_rules(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("ClassifyIn", "SubmitIn"):
        text = schemas[name]["properties"]["text"]
        assert text["minLength"] == 1 and text["maxLength"] == 20_000 and text["pattern"]
    items = schemas["BatchIn"]["properties"]["items"]
    assert items["minItems"] == 1 and items["maxItems"] == 1_000
    assert schemas["BatchIn"]["x-max-total-chars"] > 0
    department = schemas["RouteIn"]["properties"]["department"]
    assert "housing" in department["enum"] and "manual_triage" not in department["enum"]
    received = schemas["SubmitIn"]["properties"]["received_at"]
    assert received["x-not-after"] == "now" and received["x-not-before"].startswith("1900")
    assert schemas["CloseIn"]["properties"]["resolution"]["pattern"]


def test_metrics_need_a_key_unless_configured_public(tmp_path: Path, registry_root: Path, client: TestClient) -> None:
    assert_error(client.get("/metrics"), 401, "unauthorized")
    assert client.get("/metrics", headers=HOUSING).status_code == 200
    with TestClient(create_app(settings_for(tmp_path, registry_root, metrics_public=True))) as open_client:
        assert open_client.get("/metrics").status_code == 200


# -- 6. reload verifies the file ----------------------------------------------------------------------


def copied_registry(source: Path, target: Path) -> Registry:
    registry = Registry(target)
    shutil.copytree(source, target / "v-one")
    registry.promote("v-one")
    return registry


def test_reload_rereads_and_verifies_the_model_file(tmp_path: Path, trained: Any) -> None:
    registry = copied_registry(trained.folder, tmp_path / "registry")
    model_file = registry.root / "v-one" / "model.skops"
    with TestClient(create_app(settings_for(tmp_path, registry.root))) as test_client:
        model_file.write_bytes(model_file.read_bytes()[:1000])  # truncated in place, same manifest
        error = assert_error(test_client.post("/v1/model/reload", headers=ADMIN), 503, "model_reload_failed")
        assert "sha256" in json.dumps(error)
        assert test_client.post("/v1/classify", json={"text": FINANCE_TEXT}, headers=CLERK).status_code == 200


def test_reload_with_a_manifest_that_is_not_utf8_is_a_clear_error(tmp_path: Path, trained: Any) -> None:
    registry = copied_registry(trained.folder, tmp_path / "registry")
    with TestClient(create_app(settings_for(tmp_path, registry.root))) as test_client:
        (registry.root / "v-one" / "manifest.json").write_bytes(b'{"version": "\xff\xfe"}')
        assert_error(test_client.post("/v1/model/reload", headers=ADMIN), 503, "model_reload_failed")
        (registry.root / "v-one" / "manifest.json").write_text("[1, 2]", encoding="utf-8")
        assert_error(test_client.post("/v1/model/reload", headers=ADMIN), 503, "model_reload_failed")


def test_registry_refuses_versions_outside_itself(tmp_path: Path, trained: Any) -> None:
    registry = copied_registry(trained.folder, tmp_path / "registry")
    outside = tmp_path / "x"
    shutil.copytree(trained.folder, outside)
    for version in ("../x", "../../x", str(outside), "", ".", "v-one/../../x"):
        with pytest.raises(RegistryError):
            registry.promote(version)
    (registry.root / "CURRENT").write_text("../x\n", encoding="utf-8")
    with pytest.raises(RegistryError):
        registry.current_folder()
