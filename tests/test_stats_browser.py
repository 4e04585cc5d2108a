"""采纳统计 in the console, in headless Chromium against the real service (fixtures of
tests/test_console_browser.py): the weekly chart of decisions on suggestions, the per-department table
and the top corrections, shown to clerks and not offered to departments. Screenshot: stats.png."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.test_console_browser import CLERK_KEY, CORRECTION_TEXT, HOUSING_KEY, HOUSING_TEXT, shot, sign_in
from tests.test_console_browser import api as api  # fixtures: a clerk's HTTP client, the server, Chromium
from tests.test_console_browser import base_url as base_url
from tests.test_console_browser import browser as browser
from tests.test_console_browser import page as page

pytestmark = [pytest.mark.browser]


def decided(api: httpx.Client, text: str, accept: bool) -> str:
    """Register `text`; route it as suggested (accept) or to another department. Returns the suggested one."""
    petition = api.post("/v1/petitions", json={"text": text, "channel": "letter"}).json()
    suggested = petition["suggestion"]["department"]["label"]
    department = suggested if accept else ("transport" if suggested != "transport" else "housing")
    api.post(f"/v1/petitions/{petition['id']}/route", json={"department": department}).raise_for_status()
    return str(suggested)


def test_clerk_sees_acceptance_per_week_and_department(page: Page, api: httpx.Client) -> None:
    accepted_from = decided(api, HOUSING_TEXT, accept=True)
    decided(api, HOUSING_TEXT + "（第二件）", accept=True)
    decided(api, CORRECTION_TEXT, accept=False)
    expected = api.get("/v1/stats").json()

    sign_in(page, CLERK_KEY)
    page.get_by_test_id("stats-button").click()
    view = page.get_by_test_id("stats-view")
    expect(view).to_be_visible()
    expect(page.locator("#queues-view")).to_be_hidden()
    weeks = page.get_by_test_id("stats-week")
    expect(weeks).to_have_count(8)
    this_week = weeks.first  # newest first
    assert this_week.get_attribute("data-week") == expected["by_week"][-1]["week"]
    expect(this_week.locator(".chart-value")).to_contain_text("采纳建议 2")
    accepted_bar = this_week.locator(".fill-accepted").bounding_box()
    moved_bar = this_week.locator(".fill-corrected, .fill-rerouted").evaluate_all(
        "fills => fills.map((fill) => fill.getBoundingClientRect().width)"
    )
    assert accepted_bar is not None and accepted_bar["width"] > 0
    assert sorted(moved_bar)[-1] == pytest.approx(accepted_bar["width"] / 2, rel=0.05)  # one move, two accepted
    expect(weeks.nth(1).locator(".chart-value")).to_contain_text("采纳建议 0")
    expect(page.get_by_test_id("stats-summary")).to_contain_text(f"登记 {expected['counts']['suggested']} 件")

    table = page.get_by_test_id("stats-departments")
    expect(table.locator("thead th")).to_have_text(
        ["建议部门", "建议件数", "需人工分流占比", "采纳建议", "更正", "改派", "自动分流后改派", "采纳率"]
    )
    for department in expected["by_department"]:
        row = table.locator(f'tr[data-department="{department["department"]}"]')
        expect(row.locator("th")).to_have_text(department["name"])
        expect(row.locator('td[data-col="accepted"]')).to_have_text(str(department["counts"]["accepted"]))
    assert accepted_from in {department["department"] for department in expected["by_department"]}
    corrections = page.get_by_test_id("stats-corrections")
    top = expected["top_corrections"][0]
    expect(corrections.locator("li").first).to_have_text(f"{top['from_name']} → {top['to_name']}：1 件")
    shot(page, "stats")

    page.get_by_label("时间范围").select_option("4")
    expect(weeks).to_have_count(4)
    page.get_by_role("button", name="← 返回看板").filter(visible=True).click()
    expect(view).to_be_hidden()
    expect(page.locator("#queues-view")).to_be_visible()


def test_a_slow_earlier_range_never_replaces_the_chosen_one(page: Page) -> None:
    sign_in(page, CLERK_KEY)
    page.get_by_test_id("stats-button").click()
    weeks = page.get_by_test_id("stats-week")
    expect(weeks).to_have_count(8)
    held: list[Route] = []
    page.route(
        "**/v1/stats?*", lambda route: held.append(route) if "weeks=26" in route.request.url else route.continue_()
    )
    page.get_by_label("时间范围").select_option("26")  # held back: answers last
    page.get_by_label("时间范围").select_option("4")
    expect(weeks).to_have_count(4)
    assert len(held) == 1
    with page.expect_response(lambda response: "weeks=26" in response.url):
        held[0].continue_()
    page.wait_for_timeout(300)  # let the console handle the late answer
    expect(weeks).to_have_count(4)
    expect(page.get_by_test_id("stats-summary")).to_contain_text("最近 4 周")
    page.unroute("**/v1/stats?*")


def test_departments_are_not_offered_the_statistics(page: Page) -> None:
    sign_in(page, HOUSING_KEY)
    expect(page.get_by_test_id("view-title")).to_have_text(re.compile("承办工作台"))
    expect(page.get_by_test_id("stats-button")).to_be_hidden()
