"""Similar and repeat petitions through the API: intake answers, the keyed petitioner identity,
linking a repeat to its case, and the index rebuilt from the database on start."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.similar import normalised_contact
from store import Channel, QueueStore, Submission
from tests.test_api import ADMIN, CLERK, assert_error, settings_for

DATA = Path(__file__).parent / "data" / "similar_petitions.jsonl"
ROWS = {row["id"]: row for row in map(json.loads, DATA.read_text(encoding="utf-8").splitlines())}
SECRET = "test-petitioner-secret"


@pytest.fixture
def client(tmp_path: Path, registry_root: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path, registry_root, petitioner_secret=SECRET)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def submit_row(client: TestClient, row_id: str, **extra: Any) -> dict[str, Any]:
    row = ROWS[row_id]
    body = {"text": row["text"], "channel": "web", "petitioner_contact": row["contact"], **extra}
    response = client.post("/v1/petitions", json=body, headers=CLERK)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_intake_returns_similar_petitions_and_the_repeat_of_the_same_petitioner(client: TestClient) -> None:
    ids = {row_id: submit_row(client, row_id)["id"] for row_id in ("S001", "S002", "S003", "S011", "U003")}
    # a reworded petition from S001's petitioner about the same estate
    again = submit_row(client, "S007")
    assert again["repeat_of"] == ids["S001"]
    similar = {item["id"]: item for item in again["similar"]}
    assert set(similar) >= {ids["S001"], ids["S002"], ids["S003"]}
    assert ids["S011"] not in similar and ids["U003"] not in similar
    assert similar[ids["S001"]]["same_petitioner"] is True and similar[ids["S002"]]["same_petitioner"] is False
    scores = [item["score"] for item in again["similar"]]
    assert scores == sorted(scores, reverse=True)
    first = similar[ids["S001"]]
    assert first["status"] == "queued" and first["queue"] and first["received_at"]
    assert len(again["similar"]) <= 5

    # the same petitioner about something else is no repeat; another petitioner about it is none either
    assert submit_row(client, "U021")["repeat_of"] is None
    assert submit_row(client, "S004")["repeat_of"] is None

    # classify (nothing stored) answers the same way, with the contact written differently
    contact = "+86 138-0000-0001"
    response = client.post(
        "/v1/classify", json={"text": ROWS["S007"]["text"], "petitioner_contact": contact}, headers=CLERK
    )
    assert response.status_code == 200
    assert response.json()["repeat_of"] == again["id"]  # its stored twin, from the same petitioner
    assert {ids["S001"], again["id"]} <= {item["id"] for item in response.json()["similar"]}

    # the stored petition says what it repeats, and lists similar ones (never itself)
    stored = client.get(f"/v1/petitions/{again['id']}", headers=CLERK).json()
    assert stored["repeat_of"] == ids["S001"] and stored["linked_case"] is None
    assert again["id"] not in [item["id"] for item in stored["similar"]]
    assert ids["S001"] in [item["id"] for item in stored["similar"]]


def test_the_identity_is_a_keyed_hash_of_the_normalised_contact(client: TestClient, tmp_path: Path) -> None:
    submit_row(client, "S001")
    with sqlite3.connect(tmp_path / "api.db") as conn:
        key = conn.execute("SELECT petitioner_key FROM petitions").fetchone()[0]
        history = conn.execute("SELECT * FROM petition_history").fetchall()
    contact = ROWS["S001"]["contact"]
    assert key == hmac.new(SECRET.encode(), contact.encode(), hashlib.sha256).hexdigest()
    assert contact not in repr(history)
    assert normalised_contact("+86 138-0000-0001") == normalised_contact("13800000001") == "13800000001"
    assert normalised_contact("Zhang@Example.COM ") == "zhang@example.com"


def test_a_clerk_links_a_repeat_to_its_case_and_both_histories_say_so(client: TestClient) -> None:
    case = submit_row(client, "S012")["id"]
    repeat = submit_row(client, "S017")["id"]
    other = submit_row(client, "U002")["id"]
    response = client.post(f"/v1/petitions/{repeat}/link", json={"case_id": case, "note": "同一事项"}, headers=CLERK)
    assert response.status_code == 200, response.text
    linked = response.json()
    assert linked["linked_case"] == case and linked["status"] == "queued"
    entry = linked["history"][-1]
    assert entry["action"] == "linked" and entry["details"]["case"] == case and entry["note"] == "同一事项"
    case_history = client.get(f"/v1/petitions/{case}", headers=ADMIN).json()["history"]
    assert case_history[-1]["action"] == "linked" and case_history[-1]["details"] == {"linked_item": repeat}
    # linking again to the same case changes nothing
    again = client.post(f"/v1/petitions/{repeat}/link", json={"case_id": case}, headers=CLERK).json()
    assert len(again["history"]) == len(linked["history"])

    assert_error(
        client.post(f"/v1/petitions/{other}/link", json={"case_id": other}, headers=CLERK), 422, "link_to_self"
    )
    assert_error(client.post(f"/v1/petitions/{case}/link", json={"case_id": repeat}, headers=CLERK), 409, "link_cycle")
    missing = client.post(f"/v1/petitions/{other}/link", json={"case_id": 99999}, headers=CLERK)
    assert "99999" in assert_error(missing, 404, "petition_not_found")["message"]


def test_the_index_is_rebuilt_on_start_and_sees_petitions_stored_by_other_writers(
    tmp_path: Path, registry_root: Path
) -> None:
    settings = settings_for(tmp_path, registry_root, petitioner_secret=SECRET)
    with TestClient(create_app(settings)) as client:
        first = submit_row(client, "S033")["id"]
        submit_row(client, "U001")
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/classify", json={"text": ROWS["S036"]["text"]}, headers=CLERK)
        assert first in [item["id"] for item in response.json()["similar"]]
        # another writer (a batch enqueue) stores a petition; the next lookup finds it
        store = QueueStore(settings.database_url)
        prediction = client.app.state.models.current.model.predict([ROWS["S021"]["text"]])[0]
        outside = store.submit(
            Submission(text=ROWS["S021"]["text"], channel=Channel.LETTER, prediction=prediction, model_version="x")
        ).petition_id
        store.dispose()
        response = client.post("/v1/classify", json={"text": ROWS["S026"]["text"]}, headers=CLERK)
        assert outside in [item["id"] for item in response.json()["similar"]]


def batch_item(row_id: str) -> dict[str, Any]:
    row = ROWS[row_id]
    return {"text": row["text"], "channel": "web", "petitioner_contact": row["contact"], "external_id": row_id}


def test_batch_items_get_similar_and_repeat_of_as_single_submissions_do(client: TestClient) -> None:
    earlier = submit_row(client, "S012")["id"]
    items = [batch_item(row_id) for row_id in ("S001", "U003", "S002", "S007", "S017")]
    response = client.post("/v1/petitions/batch", json={"items": items}, headers=CLERK)
    assert response.status_code == 200, response.text
    stored = [item["petition"] for item in response.json()["items"]]
    first, _, other, repeat, gym = stored  # other: the same estate, another petitioner
    # the same petitioner earlier in the same batch (stored first, then looked up)
    assert repeat["repeat_of"] == first["id"]
    assert first["id"] in {item["id"] for item in repeat["similar"]}
    assert next(item for item in repeat["similar"] if item["id"] == first["id"])["same_petitioner"] is True
    # the same petitioner before the batch, through the single submit
    assert gym["repeat_of"] == earlier and earlier in [item["id"] for item in gym["similar"]]
    assert first["repeat_of"] is None and other["repeat_of"] is None
    read = client.get(f"/v1/petitions/{repeat['id']}", headers=CLERK).json()
    assert read["repeat_of"] == first["id"]
    # sent again: the originals come back (not created), never listed as similar to themselves
    again = client.post("/v1/petitions/batch", json={"items": items}, headers=CLERK).json()["items"]
    assert all(not item["petition"]["created"] for item in again)
    assert all(item["petition"]["id"] not in [s["id"] for s in item["petition"]["similar"]] for item in again)


def test_classify_enqueue_with_a_contact_column_records_repeats(
    registry_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from triage.cli import app

    database = f"sqlite:///{tmp_path / 'queue.db'}"
    monkeypatch.setenv("TRIAGE_DATABASE_URL", database)
    monkeypatch.setenv("TRIAGE_PETITIONER_SECRET", SECRET)
    source = tmp_path / "backlog.csv"
    lines = ["id,text,联系方式"] + [
        f"{row_id},{ROWS[row_id]['text'].replace(',', '，')},{ROWS[row_id]['contact']}"
        for row_id in ("S001", "U003", "S007", "U021")
    ]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    options = ["-o", str(tmp_path / "out.csv"), "-j", "1", "--quiet", "--registry", str(registry_root)]
    result = CliRunner().invoke(app, ["classify", str(source), *options, "--enqueue", "--contact-col", "联系方式"])
    assert result.exit_code == 0, result.output
    assert "repeats of earlier petitions 1" in result.output
    store = QueueStore(database)
    ids = {row_id: store.find(external_id=row_id) for row_id in ("S001", "U003", "S007", "U021")}
    petitions = {row_id: store.get(petition_id) for row_id, petition_id in ids.items() if petition_id is not None}
    store.dispose()
    assert petitions["S007"].repeat_of == ids["S001"]
    assert petitions["U021"].repeat_of is None  # the same petitioner as S001, another matter
    flags = petitions["S001"].flags  # stored as a submission through the API stores them
    assert flags is not None and set(flags) == {"litigation", "collective"}
    expected_key = hmac.new(SECRET.encode(), ROWS["S001"]["contact"].encode(), hashlib.sha256).hexdigest()
    assert petitions["S001"].petitioner_contact == ROWS["S001"]["contact"]
    with sqlite3.connect(tmp_path / "queue.db") as conn:
        keys = dict(conn.execute("SELECT external_id, petitioner_key FROM petitions").fetchall())
    assert keys["S001"] == keys["S007"] == expected_key
