"""The case workflow through the HTTP API: each transition for each role, forbidden ones included
(4xx with the error shape), both clocks, search, filters and the .xlsx export."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from model.office_time import CHINA_STANDARD_TIME
from service.auth import Principal
from service.errors import ApiError
from service.petitions import act
from store import Action, Role, Status
from tests.test_api import ADMIN, CLERK, FINANCE, FINANCE_TEXT, HOUSING, assert_error, submit
from tests.test_api import client as client  # the fixture: one app and SQLite file per test

ROAD_TEXT = "小区门口的路灯坏了三个月，晚上出行很不安全，多次反映没人修，请求尽快维修。"


def routed_to_housing(client: TestClient, **fields: Any) -> int:
    petition_id = int(submit(client, **fields).json()["id"])
    assert client.post(f"/v1/petitions/{petition_id}/route", json={"department": "housing"}, headers=CLERK).is_success
    return petition_id


def post(client: TestClient, petition_id: int, step: str, body: Any = None, headers: dict[str, str] = HOUSING) -> Any:
    return client.post(f"/v1/petitions/{petition_id}/{step}", json=body, headers=headers)


def test_department_accepts_notes_extends_and_closes_with_a_reply(client: TestClient) -> None:
    petition_id = routed_to_housing(client)
    accepted = post(client, petition_id, "accept", {"note": "已接收"})
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "accepted" and body["assignee"] == "housing-1" and body["lease"] is None
    handling_due = datetime.fromisoformat(body["handling_due_at"])
    assert abs(handling_due - (datetime.now(UTC) + timedelta(days=60))) < timedelta(minutes=1)
    assert client.post("/v1/queues/housing/claim", headers=HOUSING).status_code == 204  # an assignment, not a lease
    noted = post(client, petition_id, "notes", {"note": "已电话联系信访人"}).json()
    assert noted["status"] == "accepted" and noted["history"][-1]["note"] == "已电话联系信访人"
    assert_error(post(client, petition_id, "extend", {"days": 31, "reason": "需核查"}), 422, "extension_too_long")
    assert_error(post(client, petition_id, "extend", {"days": 5, "reason": " "}), 422, "empty_reason")
    extended = post(client, petition_id, "extend", {"days": 20, "reason": "需要现场核查"}).json()
    assert extended["extension"]["days"] == 20 and extended["extension"]["reason"] == "需要现场核查"
    assert datetime.fromisoformat(extended["handling_due_at"]) == handling_due + timedelta(days=20)
    assert_error(post(client, petition_id, "extend", {"days": 1, "reason": "再延"}), 409, "extension_used")
    closed = post(client, petition_id, "close", {"resolution": "已督促交房", "reply_summary": "已答复信访人"}).json()
    assert closed["status"] == "closed" and closed["reply_summary"] == "已答复信访人"
    history = [(entry["action"], entry["actor"], entry["role"]) for entry in closed["history"]]
    assert history == [
        ("submitted", "clerk-1", "clerk"),
        ("routed", "clerk-1", "clerk"),
        ("accepted", "housing-1", "department"),
        ("noted", "housing-1", "department"),
        ("extended", "housing-1", "department"),
        ("closed", "housing-1", "department"),
    ]
    assert all(entry["at"] for entry in closed["history"])


def test_return_puts_it_at_the_top_of_manual_triage(client: TestClient) -> None:
    earlier = submit(client, ROAD_TEXT, received_at=(datetime.now(UTC) - timedelta(days=3)).isoformat()).json()["id"]
    client.post(f"/v1/petitions/{earlier}/route", json={"department": "housing"}, headers=CLERK)
    assert post(client, earlier, "return", {"reason": "不属于本部门"}, ADMIN).status_code == 200
    petition_id = routed_to_housing(client)
    post(client, petition_id, "accept")
    assert_error(post(client, petition_id, "return", {}), 422, "missing")
    assert_error(post(client, petition_id, "return", {"reason": "  "}), 422, "empty_reason")
    returned = post(client, petition_id, "return", {"reason": "应由自然资源局办理"})
    assert returned.status_code == 200, returned.text
    body = returned.json()
    assert body["queue"] == "manual_triage" and body["status"] == "returned" and body["assignee"] is None
    assert body["history"][-1]["note"] == "应由自然资源局办理" and body["history"][-1]["from_queue"] == "housing"
    triage = client.get("/v1/queues/manual_triage", headers=CLERK).json()
    assert [item["id"] for item in triage["items"][:2]] == [earlier, petition_id]  # returned first, by due date
    counts = {queue["queue"]: queue for queue in client.get("/v1/queues", headers=CLERK).json()["queues"]}
    assert counts["manual_triage"]["returned"] == 2
    assert_error(client.get(f"/v1/petitions/{petition_id}", headers=HOUSING), 404, "petition_not_found")
    rerouted = client.post(
        f"/v1/petitions/{petition_id}/route", json={"department": "natural_resources"}, headers=CLERK
    )
    assert rerouted.json()["status"] == "routed" and rerouted.json()["queue"] == "natural_resources"


@pytest.mark.parametrize(
    ("step", "body", "headers"),
    [
        ("accept", None, CLERK),  # a clerk routes; the department accepts
        ("return", {"reason": "x"}, CLERK),
        ("extend", {"days": 3, "reason": "x"}, CLERK),
        ("accept", None, FINANCE),  # another department's item
        ("return", {"reason": "x"}, FINANCE),
        ("notes", {"note": "x"}, FINANCE),
        ("close", {"resolution": "x"}, FINANCE),
        ("route", {"department": "manual_triage"}, HOUSING),  # departments return, they do not route
    ],
)
def test_roles_that_may_not_take_a_step_are_refused(
    client: TestClient, step: str, body: Any, headers: dict[str, str]
) -> None:
    petition_id = routed_to_housing(client)
    before = client.get(f"/v1/petitions/{petition_id}", headers=CLERK).json()
    # Another department's item reads as missing (404), so ids in other queues cannot be probed.
    status, code = (404, "petition_not_found") if headers is FINANCE else (403, "forbidden")
    assert_error(post(client, petition_id, step, body, headers), status, code)
    assert client.get(f"/v1/petitions/{petition_id}", headers=CLERK).json()["history"] == before["history"]


def test_clerk_and_admin_steps_and_unauthenticated(client: TestClient) -> None:
    petition_id = routed_to_housing(client)
    assert post(client, petition_id, "notes", {"note": "已补充材料"}, CLERK).json()["history"][-1]["role"] == "clerk"
    assert post(client, petition_id, "accept", None, ADMIN).json()["assignee"] == "admin-1"
    assert_error(client.post(f"/v1/petitions/{petition_id}/notes", json={"note": "x"}), 401, "unauthorized")
    assert_error(post(client, 999_999, "accept", None, ADMIN), 404, "petition_not_found")


def test_steps_from_the_wrong_status_get_409(client: TestClient) -> None:
    petition_id = routed_to_housing(client)
    extend_early = assert_error(
        post(client, petition_id, "extend", {"days": 3, "reason": "x"}), 409, "invalid_transition"
    )
    assert "不能延期" in extend_early["message"] and extend_early["details"]["status"] == "routed"
    post(client, petition_id, "accept")
    assert_error(post(client, petition_id, "accept"), 409, "invalid_transition")
    route_accepted = client.post(f"/v1/petitions/{petition_id}/route", json={"department": "housing"}, headers=CLERK)
    assert_error(route_accepted, 409, "invalid_transition")
    post(client, petition_id, "close", {"resolution": "已办结"})
    for step, body in (("accept", None), ("return", {"reason": "x"}), ("notes", {"note": "x"})):
        assert_error(post(client, petition_id, step, body), 409, "petition_closed")


def test_both_clocks_show_and_count(client: TestClient) -> None:
    received = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    petition_id = routed_to_housing(client, received_at=received)
    routed = client.get(f"/v1/petitions/{petition_id}", headers=CLERK).json()
    assert routed["overdue"] and routed["hand_over_overdue"] and not routed["handling_overdue"]  # routing is not enough
    counts = {queue["queue"]: queue for queue in client.get("/v1/queues", headers=CLERK).json()["queues"]}
    assert counts["housing"]["overdue"] == 1 and counts["housing"]["hand_over_overdue"] == 1
    accepted = post(client, petition_id, "accept").json()
    assert accepted["overdue"] is False and accepted["handling_due_at"] is not None
    counts = {queue["queue"]: queue for queue in client.get("/v1/queues", headers=CLERK).json()["queues"]}
    assert counts["housing"]["overdue"] == 0 and counts["housing"]["accepted"] == 1


def test_petitioner_is_masked_for_a_department_before_hand_over_and_never_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    fields = {
        "petitioner_name": "王小明",
        "petitioner_contact": "13912345678",
        "headcount": 8,
        "address": "幸福路 8 号",
    }
    with caplog.at_level(logging.DEBUG):
        body = submit(client, **fields).json()
    clerk_view = client.get(f"/v1/petitions/{body['id']}", headers=CLERK).json()["petitioner"]
    assert clerk_view == {
        "masked": False,
        "name": "王小明",
        "contact": "13912345678",
        "headcount": 8,
        "address": "幸福路 8 号",
    }
    if body["queue"] == "housing":  # auto-routed: the department may look before anyone confirmed it
        early = client.get(f"/v1/petitions/{body['id']}", headers=HOUSING).json()["petitioner"]
        assert early == {"masked": True, "name": "王**", "contact": "【电话】", "headcount": 8, "address": None}
    client.post(f"/v1/petitions/{body['id']}/route", json={"department": "housing"}, headers=CLERK)
    handed = client.get(f"/v1/petitions/{body['id']}", headers=HOUSING).json()["petitioner"]
    assert handed["masked"] is False and handed["contact"] == "13912345678"
    assert "王小明" not in caplog.text and "13912345678" not in caplog.text and "幸福路" not in caplog.text
    assert_error(submit(client, headcount=0), 422, "validation_error")


def test_search_filters_sort_and_department_scope(client: TestClient) -> None:
    old = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    housing = routed_to_housing(client, external_id="XF-0001", received_at=old)
    road = submit(client, ROAD_TEXT, external_id="XF-0002").json()["id"]
    finance = submit(client, FINANCE_TEXT).json()["id"]
    client.post(f"/v1/petitions/{finance}/route", json={"department": "finance_regulation"}, headers=CLERK)
    client.post(
        "/v1/petitions", json={"text": ROAD_TEXT + "（电话）", "channel": "phone"}, headers=CLERK
    )  # another channel

    def ids(query: str, headers: dict[str, str] = CLERK) -> list[int]:
        response = client.get(f"/v1/petitions?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert road in ids("q=路灯") and housing not in ids("q=路灯")
    assert ids("q=XF-0001") == [housing] and ids(f"q=%23{finance}") == [finance]
    assert ids("q=13812345678") == [housing]  # the query is masked like the stored text
    assert ids("overdue=true") == [housing] and housing not in ids("overdue=false")
    assert ids("queue=finance_regulation") == [finance] and ids("status=routed&queue=housing") == [housing]
    assert len(ids("channel=phone")) == 1 and road not in ids("channel=phone")
    # The date filters are Beijing dates: after 16:00 UTC the UTC date of a petition is a day behind.
    today = datetime.now(CHINA_STANDARD_TIME).date().isoformat()
    old_day = datetime.fromisoformat(old).astimezone(CHINA_STANDARD_TIME).date().isoformat()
    assert housing not in ids(f"received_from={today}") and ids(f"received_to={old_day}") == [housing]
    assert housing not in ids(f"received_to={(datetime.fromisoformat(old_day) - timedelta(days=1)).date()}")
    assert ids("sort=due")[0] == housing and ids("sort=-due")[-1] == housing
    assert ids("", HOUSING) == [housing]  # a department searches its own queue only
    assert_error(client.get("/v1/petitions?queue=finance_regulation", headers=HOUSING), 403, "forbidden")
    assert_error(client.get("/v1/petitions?queue=nowhere", headers=CLERK), 404, "unknown_queue")
    assert_error(client.get("/v1/petitions?status=lost", headers=CLERK), 422, "validation_error")
    assert_error(client.get("/v1/petitions?limit=0", headers=CLERK), 422, "validation_error")
    post(client, finance, "close", {"resolution": "已立案"}, CLERK)
    assert finance not in ids("") and ids("status=closed") == [finance]


def test_export_is_the_current_list_and_formula_safe(client: TestClient) -> None:
    routed_to_housing(client, external_id='=HYPERLINK("http://x")')
    submit(client, ROAD_TEXT, external_id="@SUM(1)")
    submit(client, FINANCE_TEXT, external_id="plain-1")
    response = client.get("/v1/petitions/export.xlsx?q=HYPERLINK", headers=CLERK)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in response.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "编号" and len(rows) == 2  # the header and the one match
    assert rows[1][1] == '\'=HYPERLINK("http://x")' and rows[1][5] == "住房和城乡建设局"
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    everything = load_workbook(io.BytesIO(client.get("/v1/petitions/export.xlsx", headers=CLERK).content)).active
    external_ids = {row[1] for row in everything.iter_rows(min_row=2, values_only=True)}
    assert external_ids == {'\'=HYPERLINK("http://x")', "'@SUM(1)", "plain-1"}
    assert all("13812345678" not in str(row) for row in everything.iter_rows(values_only=True))
    housing_only = load_workbook(io.BytesIO(client.get("/v1/petitions/export.xlsx", headers=HOUSING).content)).active
    assert housing_only.max_row <= 3
    assert_error(client.get("/v1/petitions/export.xlsx"), 401, "unauthorized")


def test_api_docs_are_served_without_any_cdn(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200 and "/openapi.json" in page.text
        assert "cdn." not in page.text and "fonts.googleapis" not in page.text and "https://" not in page.text
    for asset, kind in (
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "css"),
        ("redoc.standalone.js", "javascript"),
    ):
        response = client.get(f"/docs/static/{asset}")
        assert (
            response.status_code == 200 and kind in response.headers["content-type"] and len(response.content) > 10_000
        )
    assert_error(client.get("/docs/static/..%2Fcore.py"), 404, "not_found")


def test_a_department_cannot_act_on_an_item_a_clerk_moved_after_it_was_read(client: TestClient) -> None:
    """The service read the petition, checked the caller and then wrote in another transaction: a clerk's
    re-route landing in between let housing accept an item already in education's queue (a reviewer saw
    it in 78 of 150 concurrent tries). The schedule is forced here: the clerk moves the item right after
    the department's first check, as the race does."""
    petition_id = routed_to_housing(client)
    store = client.app.state.store  # type: ignore[attr-defined]
    housing = Principal("housing-1", Role.DEPARTMENT, "housing")
    checks: list[str] = []

    def clerk_moves_it_first(principal: Principal, petition: Any) -> None:
        checks.append(petition.queue)
        if len(checks) == 1:
            store.route(petition_id, "education", domain="education", actor="clerk-1", role=Role.CLERK)

    with pytest.raises(ApiError) as refused:
        act(
            store,
            client.app.state.taxonomy,  # type: ignore[attr-defined]
            petition_id,
            housing,
            Action.ACCEPTED,
            lambda guard: store.accept(petition_id, actor=housing.name, role=housing.role, guard=guard),
            clerk_moves_it_first,
        )
    assert refused.value.status == 404 and checks == ["housing"]  # the locked row is education's now
    moved = client.get(f"/v1/petitions/{petition_id}", headers=CLERK).json()
    assert (moved["queue"], moved["status"], moved["assignee"]) == ("education", Status.ROUTED, None)
