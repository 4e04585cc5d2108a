"""`GET /v1/stats` and the decision counters in /metrics: acceptance of the suggestions per week and
suggested department, read from what the route records. Runs on SQLite and on PostgreSQL (`client`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from fastapi.testclient import TestClient

from model.office_time import CHINA_STANDARD_TIME
from service.stats import week_starts
from store import QueueStore
from tests.test_api import ADMIN, CLERK, FINANCE, HOUSING, HOUSING_TEXT, assert_error, submit
from tests.test_api import client as client  # the fixture: one app and database per test, on both backends
from tests.test_queue import prediction, submission


@pytest.fixture
def office(database_url: str) -> Iterator[QueueStore]:
    """The app's own database, to register and decide items in earlier weeks."""
    store = QueueStore(database_url)
    yield store
    store.dispose()


def route(store: QueueStore, petition_id: int, department: str, at: datetime, domain: str | None = None) -> None:
    store.route(petition_id, department, domain=domain, actor="clerk-0", role="clerk", now=at)


def department_row(rows: list[dict[str, Any]], department: str | None) -> dict[str, Any]:
    return next(row for row in rows if row["department"] == department)


def test_stats_count_suggestions_and_decisions_per_week_and_department(client: TestClient, office: QueueStore) -> None:
    now = datetime.now(UTC)
    last_week = week_starts(now, 2)[0] + timedelta(days=1, hours=3)
    long_ago = last_week - timedelta(days=21)
    unsure = prediction(confident=False)  # housing suggested, domain unsure: needs review

    def registered(text: str, at: datetime, **fields: Any) -> int:
        return office.submit(submission(text, **fields), now=at).petition_id

    # Three weeks before the window: counted nowhere.
    route(office, registered("窗口之前", long_ago), "transport", long_ago)
    # Last week: three auto-routed to housing (one confirmed, one re-routed, one left), three for review.
    route(office, registered("自动一", last_week), "housing", last_week)
    route(office, registered("自动二", last_week), "natural_resources", last_week + timedelta(hours=1))
    registered("自动三", last_week)
    route(office, registered("复核一", last_week, prediction=unsure), "housing", last_week)
    corrected = registered("复核二", last_week, prediction=unsure)
    route(office, corrected, "urban_management", last_week, domain="other")
    route(office, registered("复核三", last_week, prediction=unsure), "urban_management", last_week)
    registered("无部门", last_week, prediction=prediction(department=None, confident=False))

    # This week, through the API: whatever the model suggests, accept one and move another elsewhere.
    first = submit(client).json()
    second = submit(client, HOUSING_TEXT + "（另一件）").json()
    suggested = first["suggestion"]["department"]["label"]
    assert client.post(f"/v1/petitions/{first['id']}/route", json={"department": suggested}, headers=CLERK)
    elsewhere = "transport" if second["suggestion"]["department"]["label"] != "transport" else "finance_regulation"
    moved = client.post(f"/v1/petitions/{second['id']}/route", json={"department": elsewhere}, headers=ADMIN)
    assert moved.status_code == 200, moved.text
    second_auto = not second["suggestion"]["needs_review"]

    response = client.get("/v1/stats", params={"weeks": 2}, headers=CLERK)
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["weeks"] == 2 and len(stats["by_week"]) == 2
    assert {measure["id"]: measure["name"] for measure in stats["measures"]}["accepted"] == "采纳建议"
    before, this = stats["by_week"]
    today = now.astimezone(CHINA_STANDARD_TIME).date().isoformat()
    assert before["week"] < this["week"] and this["start"] <= today <= this["end"]

    counts = before["counts"]
    assert (counts["suggested"], counts["needs_review"], counts["auto_routed"]) == (7, 4, 3)
    assert (counts["accepted"], counts["corrected"], counts["rerouted"], counts["rerouted_auto"]) == (2, 2, 1, 1)
    assert counts["needs_review_share"] == round(4 / 7, 4) and counts["accepted_share"] == 0.4
    housing = department_row(before["departments"], "housing")
    assert housing["name"] == "住房和城乡建设局" and housing["counts"]["suggested"] == 6
    assert [(c["from_department"], c["to_department"], c["count"]) for c in housing["top_corrections"]] == [
        ("housing", "urban_management", 2),
        ("housing", "natural_resources", 1),
    ]
    none = department_row(before["departments"], None)
    assert none["name"] == "无部门建议" and none["counts"]["needs_review"] == 1

    current = this["counts"]
    assert current["suggested"] == 2 and current["accepted"] == 1
    assert (current["rerouted"], current["corrected"]) == ((1, 0) if second_auto else (0, 1))
    assert current["rerouted_auto"] == (1 if second_auto else 0)
    assert stats["counts"]["suggested"] == 9 and stats["counts"]["accepted"] == 3  # the old item is left out
    top = stats["top_corrections"][0]
    assert (top["from_department"], top["from_name"], top["to_department"], top["to_name"], top["count"]) == (
        "housing",
        "住房和城乡建设局",
        "urban_management",
        "城市管理和综合执法局",
        2,
    )
    assert department_row(stats["by_department"], "housing")["counts"]["suggested"] >= 6

    # The same decisions, counted by this process for Prometheus (department = the suggested one).
    metrics = client.get("/metrics", headers=CLERK).text
    accepted = rf'triage_route_decisions_total\{{auto_routed="\w+",decision="accepted",department="{suggested}"\}} 1\.0'
    assert re.search(accepted, metrics), metrics
    kind = "rerouted" if second_auto else "corrected"
    assert f'auto_routed="{str(second_auto).lower()}",decision="{kind}"' in metrics
    suggestions = re.findall(r'^triage_suggestions_total\{department="\w+",needs_review="\w+"\} (\S+)$', metrics, re.M)
    assert sum(float(value) for value in suggestions) == 2  # the API's two; items written to the store directly are not


def test_only_clerks_and_admins_read_stats_and_bad_input_is_422(client: TestClient) -> None:
    assert client.get("/v1/stats", headers=ADMIN).json()["weeks"] == 8
    empty = client.get("/v1/stats", params={"weeks": 1}, headers=CLERK).json()
    assert empty["counts"]["suggested"] == 0 and empty["counts"]["accepted_share"] is None
    assert empty["by_week"][0]["departments"] == [] and empty["top_corrections"] == []
    for department in (HOUSING, FINANCE):
        assert_error(client.get("/v1/stats", headers=department), 403, "forbidden")
    assert_error(client.get("/v1/stats"), 401, "unauthorized")
    for weeks in ("0", "54", "x"):
        assert client.get("/v1/stats", params={"weeks": weeks}, headers=CLERK).status_code == 422


def test_weeks_start_on_monday_china_time() -> None:
    sunday_night_utc = datetime(2026, 11, 29, 17, 30, tzinfo=UTC)  # Monday 01:30 in Beijing
    starts = week_starts(sunday_night_utc, 3)
    assert starts[-1] == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)  # Monday 30 November, 00:00 +08:00
    assert [later - earlier for earlier, later in pairwise(starts)] == [timedelta(days=7)] * 2
