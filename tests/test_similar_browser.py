"""可能重复, flags and 热点 in headless Chromium against the real server (screenshots in test-artifacts/)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from tests.test_console_browser import (  # noqa: F401  (fixtures)
    CLERK_KEY,
    api,
    base_url,
    browser,
    classify,
    page,
    pytestmark,
    shot,
    sign_in,
)
from tests.test_flags import LITIGATION_TEXT
from tests.test_hotspots_api import shifted_rows

ROWS = {row["id"]: row for row in shifted_rows(datetime.now(UTC))}


def submit(client: httpx.Client, row_id: str) -> int:
    row = ROWS[row_id]
    body = {
        "text": row["text"],
        "channel": "web",
        "received_at": row["received"].isoformat(),
        "petitioner_contact": row["contact"],
    }
    response = client.post("/v1/petitions", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_possible_repeats_are_shown_at_intake_and_a_clerk_links_one(page: Page, api: httpx.Client) -> None:  # noqa: F811
    """Also the flags: no badge on an ordinary suggestion; 涉法涉诉 with its hint at intake, in a list
    filtered by the flag, and in the item."""
    response = api.post("/v1/petitions", json={"text": LITIGATION_TEXT, "channel": "letter"})
    assert response.status_code == 201, response.text
    litigation = int(response.json()["id"])
    for row_id in ("U001", "U002", "U003", "U004", "U005"):
        submit(api, row_id)  # unrelated petitions give the shared terms their weight
    first = submit(api, "S001")
    submit(api, "S002")
    submit(api, "S003")
    sign_in(page, CLERK_KEY)
    page.get_by_label("联系方式（识别重复信访）").fill(ROWS["S007"]["contact"])
    classify(page, ROWS["S007"]["text"])
    box = page.get_by_test_id("similar")
    expect(box).to_be_visible()
    expect(box.get_by_role("heading", name="可能重复")).to_be_visible()
    assert box.get_by_test_id("similar-link").count() >= 1
    expect(page.get_by_test_id("repeat-note")).to_contain_text(f"第 {first} 号")
    expect(box.locator("li", has_text=f"第 {first} 号")).to_contain_text("同一信访人")
    expect(page.get_by_test_id("flags")).to_be_hidden()
    shot(page, "20-possible-repeats")

    # submit it, then open the stored item: its similar list offers to link it to the case
    page.keyboard.press("Alt+KeyA")
    expect(page.get_by_test_id("outcome")).to_contain_text("已接受建议")
    repeat = int(page.get_by_test_id("petition-id").inner_text().strip("第 号"))
    page.get_by_label("查找", exact=True).fill(str(repeat))
    page.get_by_role("button", name="查找", exact=True).click()
    page.locator(f'#results-table tr[data-id="{repeat}"] button').first.click()
    dialog = page.get_by_test_id("item-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#item-facts")).to_contain_text(f"第 {first} 号")
    similar = dialog.get_by_test_id("item-similar")
    similar.locator("li", has_text=f"第 {first} 号").get_by_role("button", name="关联到此件").click()
    expect(dialog.locator("#item-message")).to_contain_text(f"已关联到第 {first} 号案件")
    expect(dialog.locator("#item-facts")).to_contain_text("已关联案件")
    shot(page, "21-linked")
    case_history = api.get(f"/v1/petitions/{first}").json()["history"]
    assert case_history[-1]["action"] == "linked" and case_history[-1]["details"]["linked_item"] == repeat

    # a similar link opens that petition
    similar.get_by_test_id("similar-link").first.click()
    expect(page.locator("#item-title")).not_to_have_text(f"第 {repeat} 号信访件")

    # flags: the badge and the hint on the suggestion, the list filtered by the flag, the item
    page.locator("#close-dialog").click()
    page.keyboard.press("Alt+KeyN")
    classify(page, LITIGATION_TEXT)
    flags = page.get_by_test_id("flags")
    expect(flags.locator(".badge-flag")).to_have_text(["涉法涉诉"])
    expect(flags).to_contain_text("诉访分离")
    shot(page, "24-flag-at-intake")
    page.get_by_label("查找", exact=True).fill("")
    page.get_by_label("标记").select_option(label="涉法涉诉")
    rows = page.locator("#results-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".badge-flag")).to_have_text("涉法涉诉")
    rows.first.locator("button").first.click()
    expect(page.locator("#item-title")).to_have_text(f"第 {litigation} 号信访件")
    item_flags = dialog.get_by_test_id("item-flags")
    expect(item_flags.locator(".badge-flag")).to_have_text(["涉法涉诉"])
    expect(item_flags).to_contain_text("法定途径")
    shot(page, "25-flag-on-item")


def test_hotspots_page_shows_a_bar_chart_a_drill_down_and_exports(
    page: Page,  # noqa: F811
    api: httpx.Client,  # noqa: F811
    tmp_path: Path,
) -> None:
    for row_id in ("S011", "S012", "S013", "S014", "S021", "S022", "S023", "U010"):
        submit(api, row_id)
    sign_in(page, CLERK_KEY)
    page.get_by_role("link", name="热点").click()
    page.wait_for_url("**/hotspots")
    chart = page.get_by_test_id("hotspots-chart")
    expect(chart.get_by_test_id("hotspot-bar").first).to_be_visible()
    labels = chart.get_by_test_id("hotspot-bar").all_inner_texts()
    assert any("力动健身" in text for text in labels) and any("星辰教育" in text for text in labels)
    expect(page.get_by_test_id("hotspots-summary")).to_contain_text("个热点")
    shot(page, "22-hotspots")
    chart.get_by_test_id("hotspot-bar").filter(has_text="力动健身").click()
    detail = page.get_by_test_id("hotspot-detail")
    expect(detail).to_be_visible()
    expect(detail.locator("h2")).to_contain_text("力动健身")
    assert detail.locator("tbody tr").count() >= 4
    shot(page, "23-hotspot-detail")
    with page.expect_download() as download:
        page.get_by_role("button", name="导出 Excel").click()
    path = tmp_path / "hotspots.xlsx"
    download.value.save_as(path)
    workbook = load_workbook(io.BytesIO(path.read_bytes()), read_only=True)
    assert workbook.sheetnames == ["热点 clusters", "成员 members"]
    assert json.dumps(list(workbook["热点 clusters"].iter_rows(values_only=True))[1], ensure_ascii=False)
