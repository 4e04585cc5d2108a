"""Flags through the API on SQLite and PostgreSQL: classify, submit and read return them (ids, Chinese
labels, the litigation hint), they are stored with the item, searchable and counted per queue; a model
version saved before the flags keeps working and shows none."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from model.flags import FLAGS_FILE
from model.persistence import MANIFEST_FILE
from model.registry import Registry
from service.app import create_app
from store.schema import petitions
from tests.test_api import CLERK, HOUSING, assert_error, settings_for
from tests.test_flags import COLLECTIVE_TEXT, LITIGATION_TEXT, PLAIN_TEXT
from training.train import TrainResult


@pytest.fixture
def client(tmp_path: Path, registry_root: Path, database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(tmp_path, registry_root, database_url=database_url))) as test_client:
        yield test_client


def submit(client: TestClient, text: str) -> dict[str, Any]:
    response = client.post("/v1/petitions", json={"text": text, "channel": "letter"}, headers=CLERK)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def flag_ids(flags: list[dict[str, Any]]) -> list[str]:
    return [flag["flag"] for flag in flags]


def test_flags_are_returned_stored_searchable_and_counted(client: TestClient, database_url: str) -> None:
    classified = client.post("/v1/classify", json={"text": LITIGATION_TEXT}, headers=CLERK)
    assert classified.status_code == 200
    [flag] = classified.json()["flags"]
    assert flag["flag"] == "litigation" and flag["label"] == "涉法涉诉" and flag["probability"] > 0.5
    assert "诉访分离" in flag["hint"] and "法定途径" in flag["hint"]

    litigation = submit(client, LITIGATION_TEXT)
    collective = submit(client, COLLECTIVE_TEXT)
    plain = submit(client, PLAIN_TEXT)
    assert flag_ids(litigation["suggestion"]["flags"]) == ["litigation"]
    [group] = collective["suggestion"]["flags"]
    assert group == {"flag": "collective", "label": "集体访", "probability": group["probability"], "hint": None}
    assert plain["suggestion"]["flags"] == []

    read = client.get(f"/v1/petitions/{litigation['id']}", headers=CLERK).json()
    assert read["prediction"]["flags"] == litigation["suggestion"]["flags"]
    # stored in the petitions.flags column: every flag's decision and probability
    engine = create_engine(database_url)
    with engine.connect() as conn:
        stored = dict(conn.execute(select(petitions.c.id, petitions.c.flags)).all())
    engine.dispose()
    assert stored[litigation["id"]]["litigation"]["flagged"] is True
    assert stored[litigation["id"]]["collective"]["flagged"] is False
    assert stored[plain["id"]]["litigation"] == {
        "flagged": False,
        "probability": stored[plain["id"]]["litigation"]["probability"],
    }

    found = client.get("/v1/petitions", params={"flag": "litigation"}, headers=CLERK).json()
    assert [item["id"] for item in found["items"]] == [litigation["id"]] and found["items"][0]["flags"] == [
        "litigation"
    ]
    found = client.get("/v1/petitions", params={"flag": "collective"}, headers=CLERK).json()
    assert [item["id"] for item in found["items"]] == [collective["id"]]
    everything = client.get("/v1/petitions", headers=CLERK).json()
    assert {item["id"]: item["flags"] for item in everything["items"]}[plain["id"]] == []
    assert_error(client.get("/v1/petitions", params={"flag": "urgent"}, headers=CLERK), 422, "validation_error")

    queues = client.get("/v1/queues", headers=CLERK).json()["queues"]
    assert sum(q["litigation"] for q in queues) == 1 and sum(q["collective"] for q in queues) == 1
    by_queue = {q["queue"]: q for q in queues}
    assert by_queue[litigation["queue"]]["litigation"] == 1

    vocabulary = client.get("/console/taxonomy.json", headers=HOUSING).json()["flags"]
    assert vocabulary["litigation"]["label"] == "涉法涉诉" and vocabulary["collective"] == {
        "label": "集体访",
        "hint": None,
    }
    model = client.get("/v1/model", headers=CLERK).json()
    assert model["flags"]["test"]["litigation"]["precision"] >= 0.9


def test_a_model_version_saved_before_the_flags_keeps_working_without_flags(
    tmp_path: Path, trained: TrainResult, database_url: str
) -> None:
    root = tmp_path / "registry"
    old = root / "old-version"
    shutil.copytree(trained.folder, old)
    (old / FLAGS_FILE).unlink()
    manifest = json.loads((old / MANIFEST_FILE).read_text(encoding="utf-8"))
    del manifest["flags"]
    manifest["version"] = "old-version"
    (old / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    Registry(root).promote("old-version")
    with TestClient(create_app(settings_for(tmp_path, root, database_url=database_url))) as client:
        assert client.post("/v1/classify", json={"text": LITIGATION_TEXT}, headers=CLERK).json()["flags"] == []
        stored = submit(client, LITIGATION_TEXT)
        assert stored["suggestion"]["flags"] == [] and stored["suggestion"]["model_version"] == "old-version"
        assert client.get(f"/v1/petitions/{stored['id']}", headers=CLERK).json()["prediction"]["flags"] == []
        assert client.get("/v1/petitions", params={"flag": "litigation"}, headers=CLERK).json()["total"] == 0
        assert all(q["litigation"] == 0 for q in client.get("/v1/queues", headers=CLERK).json()["queues"])
        assert client.get("/v1/model", headers=CLERK).json()["flags"] == {}
