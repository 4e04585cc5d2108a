"""The department's workbench and the clerk's search, filters, export and print, in real Chromium
against the real service (fixtures of tests/test_console_browser.py). Screenshots go to
test-artifacts/screenshots/ for a person to look at."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, Route, expect

from tests.test_console_browser import (
    CLERK_KEY,
    HOUSING_KEY,
    HOUSING_TEXT,
    SCREENSHOTS,
    classify,
    shot,
    sign_in,
)
from tests.test_console_browser import api as api  # fixtures: a clerk's HTTP client, the server, Chromium
from tests.test_console_browser import base_url as base_url
from tests.test_console_browser import browser as browser
from tests.test_console_browser import page as page

pytestmark = [pytest.mark.browser]

ROAD_TEXT = "小区门口的路灯坏了三个月，晚上出行很不安全，多次反映没人修，请求尽快维修。"


def routed(api: httpx.Client, text: str, department: str = "housing", **fields: object) -> int:
    petition = api.post("/v1/petitions", json={"text": text, "channel": "letter", **fields}).json()
    api.post(f"/v1/petitions/{petition['id']}/route", json={"department": department}).raise_for_status()
    return int(petition["id"])


def open_item(page: Page, petition_id: int) -> None:
    page.locator(f'tr[data-id="{petition_id}"] button').first.click()
    expect(page.get_by_test_id("item-dialog")).to_be_visible()


def test_department_waits_for_a_clerk_before_accepting_a_suggestion(page: Page, api: httpx.Client) -> None:
    submitted = api.post("/v1/petitions", json={"text": HOUSING_TEXT + "（系统建议）", "channel": "web"}).json()
    suggested = api.get(f"/v1/petitions/{submitted['id']}").json()
    assert suggested["queue"] == "housing" and suggested["route"]["routed_at"] is None, suggested
    sign_in(page, HOUSING_KEY)
    open_item(page, suggested["id"])
    expect(page.get_by_test_id("accept-item")).to_be_hidden()
    expect(page.get_by_test_id("await-handover")).to_be_visible()
    expect(page.locator("#return-form")).to_be_visible()  # a wrong suggestion can still go back
    expect(page.locator("#close-form")).to_be_hidden()


def test_department_accepts_notes_extends_returns_and_closes(page: Page, api: httpx.Client) -> None:
    kept = routed(api, HOUSING_TEXT.replace("2022年", "2020年"))
    wrong = routed(api, ROAD_TEXT + "（误转住建）")
    sign_in(page, HOUSING_KEY)
    expect(page).to_have_title("信访分流 · 承办工作台")
    expect(page.locator("#queue-title")).to_contain_text("住房和城乡建设局")
    expect(page.locator(f'#items-table tr[data-id="{kept}"]')).to_contain_text("转交")
    shot(page, "20-workbench")

    open_item(page, kept)
    expect(page.get_by_test_id("work-panel")).to_be_visible()
    expect(page.locator("#extend-form")).to_be_hidden()  # nothing to extend before acceptance
    expect(page.locator("#close-form")).to_be_hidden()
    page.get_by_test_id("accept-item").click()
    expect(page.locator("#item-message")).to_contain_text("已受理，办理期限至")
    expect(page.locator("#item-facts")).to_contain_text("承办人")
    expect(page.locator("#item-facts")).to_contain_text("housing-li")
    page.get_by_label("备注", exact=True).fill("已电话联系信访人")
    page.get_by_role("button", name="添加备注").click()
    expect(page.get_by_test_id("item-history")).to_contain_text("已电话联系信访人")
    page.get_by_label("申请延期（天）").fill("10")
    page.get_by_label("理由", exact=True).fill("需要现场核查")
    page.get_by_role("button", name="申请延期").click()
    expect(page.locator("#item-message")).to_contain_text("已延期")
    expect(page.locator("#item-facts")).to_contain_text("10 日：需要现场核查")
    expect(page.locator("#extend-form")).to_be_hidden()  # one extension only
    shot(page, "21-accepted-noted-extended")
    page.get_by_label("办理结果").fill("已督促开发商交房")
    page.get_by_label("答复信访人摘要").fill("已电话答复：开发商承诺月底交房")
    page.get_by_role("button", name="办结", exact=True).click()
    expect(page.locator("#item-message")).to_contain_text("已办结")
    expect(page.get_by_test_id("work-panel")).to_be_hidden()
    history = page.get_by_test_id("item-history")
    for action in ("accepted", "noted", "extended", "closed"):
        expect(history.locator(f'li[data-action="{action}"]')).to_contain_text("housing-li")
    shot(page, "22-closed")
    stored = api.get(f"/v1/petitions/{kept}").json()
    assert stored["status"] == "closed" and stored["reply_summary"] == "已电话答复：开发商承诺月底交房"
    assert stored["extension"]["days"] == 10
    page.locator("#close-dialog").click()

    open_item(page, wrong)
    page.get_by_role("button", name="退回人工分流").click()
    expect(page.locator("#item-message")).to_contain_text("请填写退回理由")
    page.get_by_label("退回理由").fill("路灯维修不属于住建部门职责")
    page.get_by_role("button", name="退回人工分流").click()
    expect(page.get_by_test_id("item-dialog")).to_be_hidden()
    expect(page.get_by_test_id("board-message")).to_contain_text("已退回人工分流")
    expect(page.locator(f'#items-table tr[data-id="{wrong}"]')).to_have_count(0)
    shot(page, "23-returned")
    returned = api.get(f"/v1/petitions/{wrong}").json()
    assert returned["queue"] == "manual_triage" and returned["status"] == "returned"
    assert returned["history"][-1]["note"] == "路灯维修不属于住建部门职责"

    # The clerk finds it at the top of manual triage, marked.
    page.get_by_role("button", name="退出").click()
    sign_in(page, CLERK_KEY)
    expect(page.get_by_test_id("view-title")).to_have_text("登记台")
    page.locator('#queues-table tr[data-queue="manual_triage"] button').click()
    first = page.locator("#items-table tbody tr").first
    expect(first).to_have_attribute("data-id", str(wrong))
    expect(first).to_contain_text("已退回")
    shot(page, "24-manual-triage-returned-first")


def test_a_slow_earlier_search_never_overwrites_the_latest_filters(page: Page, api: httpx.Client) -> None:
    """Two filters changed in quick succession: the first search's answer, arriving last, is dropped."""
    marker = "东风路十七号井盖缺失"
    by_phone = api.post("/v1/petitions", json={"text": f"{marker}，夜里有人摔伤", "channel": "phone"}).json()["id"]
    by_letter = api.post("/v1/petitions", json={"text": f"{marker}，请尽快补上", "channel": "letter"}).json()["id"]
    sign_in(page, CLERK_KEY)
    page.get_by_label("查找", exact=True).fill(marker)
    page.get_by_role("button", name="查找", exact=True).click()
    results = page.get_by_test_id("results-table")
    expect(results.locator(f'tr[data-id="{by_letter}"]')).to_be_visible()

    held: list[Route] = []
    page.route(
        "**/v1/petitions?*",
        lambda route: held.append(route) if "channel=letter" in route.request.url else route.continue_(),
    )
    page.locator("#filter-channel").select_option("letter")  # held back: answers last
    page.locator("#filter-channel").select_option("phone")
    expect(results.locator(f'tr[data-id="{by_phone}"]')).to_be_visible()
    expect(results.locator(f'tr[data-id="{by_letter}"]')).to_have_count(0)
    assert len(held) == 1
    with page.expect_response(lambda response: "channel=letter" in response.url):
        held[0].continue_()
    page.wait_for_timeout(300)  # let the console handle the late answer
    expect(results.locator(f'tr[data-id="{by_phone}"]')).to_be_visible()
    expect(results.locator(f'tr[data-id="{by_letter}"]')).to_have_count(0)
    page.unroute("**/v1/petitions?*")


def test_clerk_searches_filters_exports_and_prints(page: Page, api: httpx.Client) -> None:
    old = (datetime.now(UTC) - timedelta(days=25)).isoformat()
    late = routed(api, "开发商挪用小区维修基金，业委会多次反映未果。", external_id="=CMD(1)", received_at=old)
    road = api.post("/v1/petitions", json={"text": ROAD_TEXT, "channel": "phone", "external_id": "TEL-77"}).json()
    sign_in(page, CLERK_KEY)

    page.get_by_label("查找", exact=True).fill("路灯")
    page.get_by_role("button", name="查找", exact=True).click()
    results = page.get_by_test_id("results-table")
    expect(results.locator(f'tr[data-id="{road["id"]}"]')).to_be_visible()
    expect(results.locator(f'tr[data-id="{late}"]')).to_have_count(0)
    shot(page, "25-search-text")

    page.get_by_label("查找", exact=True).fill("")
    page.locator("#filter-overdue").select_option("true")
    expect(results.locator(f'tr[data-id="{late}"]')).to_be_visible()
    expect(results.locator(f'tr[data-id="{road["id"]}"]')).to_have_count(0)
    expect(results.locator(f'tr[data-id="{late}"]')).to_have_class("overdue")
    page.locator("#filter-overdue").select_option("")
    page.locator("#filter-channel").select_option("phone")
    expect(results.locator(f'tr[data-id="{road["id"]}"]')).to_be_visible()
    expect(results.locator(f'tr[data-id="{late}"]')).to_have_count(0)
    page.locator("#filter-channel").select_option("")
    page.locator("#filter-to").fill((datetime.now(UTC) - timedelta(days=20)).date().isoformat())
    page.get_by_role("button", name="查找", exact=True).click()
    expect(results.locator("tbody tr[data-id]").first).to_have_attribute("data-id", str(late))
    expect(results.locator(f'tr[data-id="{road["id"]}"]')).to_have_count(0)
    shot(page, "26-search-date-range")

    with page.expect_download() as download_info:
        page.get_by_test_id("export-button").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    with open(download.path(), "rb") as handle:
        sheet = load_workbook(io.BytesIO(handle.read())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "编号"
    exported = {row[0]: row for row in rows[1:]}
    assert late in exported and road["id"] not in exported  # the list on screen, not everything
    assert exported[late][1] == "'=CMD(1)"  # formula-injection safe
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)

    page.emulate_media(media="print")
    expect(page.locator("#search-form")).to_be_hidden()
    expect(page.get_by_test_id("results-table")).to_be_visible()
    shot(page, "27-print")
    page.emulate_media(media="screen")


def test_intake_fields_confirmation_and_the_unsure_head(page: Page, api: httpx.Client) -> None:
    sign_in(page, CLERK_KEY)
    text = HOUSING_TEXT.replace("2022年", "2019年").replace("13812345678", "13912345678")
    classify(page, text)
    highlighted = page.get_by_test_id("highlighted")
    assert "，" in highlighted.inner_text() and "," not in highlighted.inner_text()  # its own punctuation
    assert "13912345678" not in highlighted.inner_text()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    page.get_by_label("收件日期").fill(yesterday)
    page.get_by_label("信访人姓名").fill("李四")
    page.get_by_label("联系方式").fill("13912345678")
    page.get_by_label("人数").fill("6")
    page.get_by_label("地址").fill("某区幸福路 8 号")
    page.get_by_role("button", name="接受建议").click()
    outcome = page.get_by_test_id("outcome")
    expect(outcome).to_contain_text("已接受建议")
    expect(outcome).to_contain_text("已分流")
    petition_id = int(page.get_by_test_id("petition-id").inner_text().strip("第 号"))
    stored = api.get(f"/v1/petitions/{petition_id}").json()
    assert stored["status"] == "routed" and stored["history"][-1]["action"] == "routed"  # the confirmation
    assert stored["petitioner"] == {
        "masked": False,
        "name": "李四",
        "contact": "13912345678",
        "headcount": 6,
        "address": "某区幸福路 8 号",
    }
    assert stored["received_at"].startswith((yesterday, (datetime.now(UTC) - timedelta(days=2)).date().isoformat()))
    shot(page, "28-intake-fields-confirmed")

    # Only the department head is unsure: the warning says so (the classify answer is the real one,
    # with the department head's flag set, so this does not depend on the model's mood).
    real = api.post("/v1/classify", json={"text": ROAD_TEXT}).json()
    real["needs_review"] = True
    real["domain"]["needs_review"] = False
    real["department"]["needs_review"] = True
    page.route(
        "**/v1/classify",
        lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(real)),
    )
    page.keyboard.press("Alt+KeyN")
    classify(page, ROAD_TEXT)
    expect(page.get_by_test_id("review-state")).to_have_text("需人工复核：部门把握不足，提交后默认进入人工分流队列")
    shot(page, "29-unsure-department")
    page.unroute("**/v1/classify")


def test_api_docs_render_with_nothing_from_outside(page: Page, base_url: str) -> None:
    outside: list[str] = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith(base_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("信访分流")
    expect(page.get_by_text("/v1/petitions/{petition_id}/accept").first).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "30-swagger-offline.png"))  # the viewport: the full page is huge
    page.goto("/redoc")
    expect(page.locator("h1").first).to_contain_text("信访分流", timeout=30_000)  # ReDoc parses 1 MB of script
    page.screenshot(path=str(SCREENSHOTS / "31-redoc-offline.png"))
    # ReDoc's own "powered by" logo is the one outside request it tries; blocked, the page still renders.
    assert all(url.endswith("/logo-mini.svg") for url in outside), outside
