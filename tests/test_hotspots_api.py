"""`GET /v1/hotspots` and its .xlsx export on the hand-written test petitions, submitted through the API."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from service.app import create_app
from tests.test_api import ADMIN, CLERK, HOUSING, assert_error, settings_for

DATA = Path(__file__).parent / "data" / "similar_petitions.jsonl"


def shifted_rows(now: datetime) -> list[dict[str, Any]]:
    """The test petitions with their received times moved so that the newest is an hour ago."""
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    newest = max(datetime.fromisoformat(row["received_at"]) for row in rows)
    for row in rows:
        row["received"] = now - timedelta(hours=1) - (newest - datetime.fromisoformat(row["received_at"]))
    return rows


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory, registry_root: Path
) -> Iterator[tuple[TestClient, dict[int, str]]]:
    settings = settings_for(tmp_path_factory.mktemp("hotspots"), registry_root)
    with TestClient(create_app(settings)) as client:
        topics: dict[int, str] = {}
        for row in shifted_rows(datetime.now(UTC)):
            body = {
                "text": row["text"],
                "channel": "web",
                "received_at": row["received"].isoformat(),
                "petitioner_contact": row["contact"],
            }
            response = client.post("/v1/petitions", json=body, headers=CLERK)
            assert response.status_code == 201, response.text
            topics[response.json()["id"]] = row["topic"]
        yield client, topics


def test_hotspots_are_the_test_topics_ranked_by_heat(loaded: tuple[TestClient, dict[int, str]]) -> None:
    client, topics = loaded
    response = client.get("/v1/hotspots?days=60", headers=CLERK)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["petitions"] == len(topics) and "2^" in answer["formula"]
    clusters = answer["clusters"]
    assert len(clusters) == 6
    assert [cluster["cluster"] for cluster in clusters] == [f"H{rank:04d}" for rank in range(1, 7)]
    heats = [cluster["heat"] for cluster in clusters]
    assert heats == sorted(heats, reverse=True)
    for cluster in clusters:
        assert len({topics[member] for member in cluster["members"]}) == 1  # pure
        assert cluster["size"] == len(cluster["members"]) == len(cluster["items"])
        assert cluster["first"] <= cluster["last"]
        assert sum(item["count"] for item in cluster["departments"]) == cluster["size"]
        assert all(item["name"] for item in cluster["domains"])
    by_topic = {topics[cluster["members"][0]]: cluster for cluster in clusters}
    gym = by_topic["ldjs"]
    assert "力动健身" in gym["label"] and gym["target"] in gym["label"] and gym["size"] == 7
    assert gym["petitioners"] == 6  # the repeat's petitioner counts once
    assert gym["items"][0]["received_at"] >= gym["items"][-1]["received_at"]  # newest first
    assert all(item["preview"] and item["status"] and item["queue"] for item in gym["items"])

    # a short window holds fewer petitions; the department role may not read hotspots
    assert client.get("/v1/hotspots?days=3", headers=ADMIN).json()["petitions"] < len(topics)
    assert_error(client.get("/v1/hotspots", headers=HOUSING), 403, "forbidden")
    assert_error(client.get("/v1/hotspots?days=0", headers=CLERK), 422, "validation_error")


def test_hotspots_export_has_clusters_and_members_sheets(loaded: tuple[TestClient, dict[int, str]]) -> None:
    client, topics = loaded
    response = client.get("/v1/hotspots/export.xlsx?days=60", headers=CLERK)
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    workbook = load_workbook(io.BytesIO(response.content), read_only=True)
    clusters = list(workbook["热点 clusters"].iter_rows(values_only=True))
    members = list(workbook["成员 members"].iter_rows(values_only=True))
    assert clusters[0][:3] == ("cluster", "rank", "label") and len(clusters) == 7
    assert members[0] == ("id", "cluster")
    assert {row[0] for row in members[1:]} <= set(topics)
    assert len(members) - 1 == sum(int(row[4]) for row in clusters[1:])  # size column
