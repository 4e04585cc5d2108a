"""The clerk console end to end: the real service in a subprocess, the page in headless Chromium.

Screenshots of the main states go to test-artifacts/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support import free_port, server_command, wait_ready

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CLERK_KEY = "console-test-clerk"
HOUSING_KEY = "console-test-housing"
API_KEYS = {
    CLERK_KEY: {"role": "clerk", "name": "clerk-wang"},
    HOUSING_KEY: {"role": "department", "name": "housing-li", "department": "housing"},
    "console-test-admin": {"role": "admin", "name": "admin-zhao"},
}
HOUSING_TEXT = (
    "我于2022年在某楼盘购买商品房，合同约定2023年6月交房，开发商逾期至今仍未交付，多次找开发商均拒不答复。"
    "本人电话13812345678，请求住建部门督促开发商尽快交房。"
)
CORRECTION_TEXT = "小区门口的路灯坏了三个月，晚上出行很不安全，多次反映没人修，请求尽快维修。"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]


@pytest.fixture(scope="module")
def base_url(registry_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("console")
    port = free_port()
    env = {
        **os.environ,
        "TRIAGE_REGISTRY": str(registry_root),
        "TRIAGE_DATABASE_URL": f"sqlite:///{folder / 'console.db'}",
        "TRIAGE_API_KEYS": json.dumps(API_KEYS),
        "TRIAGE_SQLITE_SYNCHRONOUS": "NORMAL",
    }
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        server_command(port),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, timeout=60)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=30_000
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(
        base_url=base_url, viewport={"width": 1366, "height": 768}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        context.close()


@pytest.fixture
def api(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10, headers={"X-API-Key": CLERK_KEY}) as client:
        yield client


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, key: str) -> None:
    page.goto("/")
    page.get_by_label("API 密钥").fill(key)
    page.get_by_role("button", name="登录").click()
    page.locator("#user-box").wait_for(state="visible")


def board_count(page: Page, queue: str) -> int:
    """Open items of a queue as the board shows them (queued + routed + claimed); 0 when not listed."""
    row = page.locator(f'#queues-table tr[data-queue="{queue}"]')
    if row.count() == 0:
        return 0
    return sum(int(row.locator(f'td[data-col="{col}"]').inner_text()) for col in ("queued", "routed", "claimed"))


def classify(page: Page, text: str) -> None:
    page.get_by_label("信访内容").fill(text)
    page.get_by_label("信访内容").press("Control+Enter")
    page.get_by_test_id("result").wait_for(state="visible")


def test_sign_in_classify_accept_and_board_updates(page: Page, base_url: str, api: httpx.Client) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    shot(page, "01-sign-in")
    page.get_by_label("API 密钥").fill("not-a-key")
    page.get_by_role("button", name="登录").click()
    expect(page.locator("#sign-in-message")).to_contain_text("API 密钥无效")

    sign_in(page, CLERK_KEY)
    expect(page.get_by_test_id("user-role")).to_have_text("角色：登记员")
    assert CLERK_KEY not in page.url
    assert page.evaluate("sessionStorage.getItem('triage.apiKey')") == CLERK_KEY
    expect(page.locator("#queues-table tbody tr").first).to_be_visible()
    before = board_count(page, "housing")

    classify(page, HOUSING_TEXT)
    expect(page.get_by_test_id("domain-name")).to_have_text("房地产")
    expect(page.get_by_test_id("departments").locator("li")).to_have_count(3)
    expect(page.get_by_test_id("departments").locator("li").first).to_contain_text("住房和城乡建设局")
    expect(page.get_by_test_id("review-state")).not_to_be_empty()
    highlighted = page.get_by_test_id("highlighted")
    assert highlighted.locator("mark").count() >= 1
    assert "开发商" in highlighted.locator("mark").all_inner_texts()
    assert "13812345678" not in highlighted.inner_text(), "the phone number must be masked in the highlighted view"
    shot(page, "02-classified")

    page.keyboard.press("Alt+KeyA")
    outcome = page.get_by_test_id("outcome")
    expect(outcome).to_contain_text("已接受建议")
    expect(outcome).to_contain_text("住房和城乡建设局")
    expect(outcome).to_contain_text("转交期限")
    petition_id = int(page.get_by_test_id("petition-id").inner_text().strip("第 号"))
    stored = api.get(f"/v1/petitions/{petition_id}").json()
    assert stored["queue"] == "housing" and stored["text"] == HOUSING_TEXT
    expect(page.locator('#queues-table tr[data-queue="housing"]')).to_be_visible()
    page.wait_for_function(
        "n => { const row = document.querySelector('#queues-table tr[data-queue=\"housing\"]');"
        " return row && [...row.querySelectorAll('td')].slice(0, 3).reduce((s, td) => s + Number(td.textContent), 0)"
        " === n; }",
        arg=before + 1,
    )
    assert board_count(page, "housing") == before + 1
    shot(page, "03-accepted")

    # Alt+N: the next petition starts from an empty, editable form.
    page.keyboard.press("Alt+KeyN")
    expect(page.get_by_label("信访内容")).to_have_value("")
    expect(page.get_by_label("信访内容")).to_be_editable()
    expect(page.get_by_test_id("result")).to_be_hidden()


def test_correction_is_routed_recorded_and_rerouted_from_the_board(page: Page, api: httpx.Client) -> None:
    sign_in(page, CLERK_KEY)
    classify(page, CORRECTION_TEXT)
    page.locator("#correct-form").get_by_label("领域").select_option(label="其他")
    page.locator("#correct-department").select_option("civil_affairs")
    page.locator("#correct-form").get_by_label("备注（可选）").fill("路灯属城管，先转民政核实")
    page.get_by_role("button", name="提交更正").click()
    outcome = page.get_by_test_id("outcome")
    expect(outcome).to_contain_text("民政局")
    petition_id = int(page.get_by_test_id("petition-id").inner_text().strip("第 号"))
    stored = api.get(f"/v1/petitions/{petition_id}").json()
    assert stored["queue"] == "civil_affairs" and stored["status"] == "routed"
    assert stored["route"]["domain"] == "other"
    assert any(entry["action"] == "corrected" for entry in stored["history"]), "a correction is recorded"
    expect(outcome).to_contain_text("更正已记录为模型反馈")
    shot(page, "04-corrected")

    # The board: open the queue, then the item, then re-route it.
    page.locator('#queues-table tr[data-queue="civil_affairs"] button').click()
    expect(page.locator("#queue-title")).to_contain_text("民政局")
    row = page.locator(f'#items-table tr[data-id="{petition_id}"]')
    expect(row).to_contain_text("剩余 15 天")
    shot(page, "05-queue")
    row.get_by_role("button").click()
    dialog = page.get_by_test_id("item-dialog")
    expect(dialog).to_be_visible()
    history = page.get_by_test_id("item-history")
    expect(history).to_contain_text("登记")
    expect(history).to_contain_text("更正分流")
    expect(history).to_contain_text("路灯属城管，先转民政核实")
    shot(page, "06-item-history")
    page.locator("#reroute-domain").select_option("other")
    page.locator("#reroute-department").select_option("urban_management")
    page.locator("#reroute-note").fill("改由城管处理")
    page.get_by_role("button", name="确认分流").click()
    expect(page.locator("#item-message")).to_contain_text("已分流至“城市管理和综合执法局”")
    expect(history).to_contain_text("改由城管处理")
    assert api.get(f"/v1/petitions/{petition_id}").json()["queue"] == "urban_management"
    shot(page, "07-rerouted")
    page.get_by_role("button", name="关闭").click()
    expect(row).to_have_count(0)  # the civil-affairs list no longer holds it


def test_errors_are_clear_and_keep_what_was_typed(page: Page, api: httpx.Client) -> None:
    sign_in(page, CLERK_KEY)
    message = page.get_by_test_id("intake-message")
    page.get_by_label("信访内容").fill("   ")
    page.get_by_role("button", name="分类").click()
    expect(message).to_contain_text("信访内容不能为空")
    shot(page, "08-empty-text-error")

    page.get_by_label("信访内容").fill("长" * 20_001)
    page.get_by_role("button", name="分类").click()
    expect(message).to_contain_text("超过 20000 字")
    expect(page.locator("#text-count")).to_have_class("over")

    # The server goes away while the clerk submits: a clear message, the text stays, a retry works once.
    text = HOUSING_TEXT.replace("2022年", "2021年")
    classify(page, text)
    page.route("**/v1/petitions", lambda route: route.abort("connectionrefused"))
    page.get_by_role("button", name="接受建议").click()
    expect(message).to_contain_text("无法连接服务器")
    expect(page.get_by_label("信访内容")).to_have_value(text)
    expect(page.get_by_label("信访内容")).to_be_editable()
    shot(page, "09-server-unreachable")
    page.unroute("**/v1/petitions")

    # The key stops working mid-task (answered here with the service's own 401 body): the page asks
    # for the key again and, once signed in, the petition is still there to submit.
    unauthorized = api.post("/v1/petitions", headers={"X-API-Key": "revoked"}, json={"text": "x", "channel": "web"})
    assert unauthorized.status_code == 401
    page.route(
        "**/v1/petitions",
        lambda route: route.fulfill(status=401, content_type="application/json", body=unauthorized.text),
    )
    page.get_by_role("button", name="接受建议").click()
    expect(page.locator("#sign-in-message")).to_contain_text("API 密钥无效或已失效，请重新登录")
    expect(page.locator("#main")).to_be_hidden()
    shot(page, "10-key-expired")
    page.unroute("**/v1/petitions")
    page.get_by_label("API 密钥").fill(CLERK_KEY)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_label("信访内容")).to_have_value(text)
    page.get_by_role("button", name="接受建议").click()
    expect(page.get_by_test_id("outcome")).to_contain_text("已接受建议")
    expect(message).to_be_empty()
    listed = api.get("/v1/queues/housing", params={"limit": 200}).json()["items"]
    listed += api.get("/v1/queues/manual_triage", params={"limit": 200}).json()["items"]
    assert sum(1 for item in listed if "2021年" in item["preview"]) == 1, "a retried submit never makes a copy"


def test_department_role_is_refused_other_queues(page: Page, api: httpx.Client) -> None:
    # A petition in another department's queue, and an overdue one that may land in housing's.
    other = api.post("/v1/petitions", json={"text": CORRECTION_TEXT + "（转交）", "channel": "phone"}).json()
    api.post(f"/v1/petitions/{other['id']}/route", json={"department": "urban_management"}).raise_for_status()
    received = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    overdue = api.post(
        "/v1/petitions",
        json={"text": "开发商拖欠维修基金不退，物业也不管。", "channel": "letter", "received_at": received},
    ).json()

    sign_in(page, HOUSING_KEY)
    expect(page.get_by_test_id("user-role")).to_have_text("角色：责任部门")
    expect(page.locator("#user-department")).to_have_text("部门：住房和城乡建设局")
    expect(page.get_by_test_id("view-title")).to_have_text("承办工作台")
    expect(page.locator("#intake")).to_be_hidden()

    # Its own queue opens at once; an overdue item (if the model sent it here) is marked.
    expect(page.locator("#queue-title")).to_contain_text("住房和城乡建设局")
    if overdue["queue"] == "housing":
        expect(page.locator(f'#items-table tr[data-id="{overdue["id"]}"]')).to_contain_text("已超期")
    expect(page.locator("#claim-button")).to_be_hidden()  # departments accept; leases are for worker systems
    shot(page, "12-department-queue")
    page.locator("#back-to-queues").click()
    queues = page.locator("#queues-table tbody tr[data-queue]")
    expect(queues).to_have_count(1)
    expect(queues.first).to_have_attribute("data-queue", "housing")

    # Another department's item is not found by its number (a department searches its own queue) ...
    page.get_by_label("查找", exact=True).fill(str(other["id"]))
    page.get_by_role("button", name="查找", exact=True).click()
    expect(page.get_by_test_id("results-table")).to_contain_text("没有符合条件的信访件")
    # ... nor can its queue be asked for.
    page.locator("#filter-queue").evaluate(
        "select => { select.add(new Option('x', 'urban_management')); select.value = 'urban_management'; }"
    )
    page.get_by_role("button", name="查找", exact=True).click()
    board_message = page.get_by_test_id("board-message")
    # Asking for another queue is refused (queue names are public; its items stay invisible above).
    expect(board_message).to_contain_text("部门密钥只能访问本部门队列")
    shot(page, "11-department-forbidden")


def test_overdue_items_are_marked_and_narrow_window_fits(page: Page, api: httpx.Client) -> None:
    received = (datetime.now(UTC) - timedelta(days=18)).isoformat()
    late = api.post(
        "/v1/petitions",
        json={
            "text": "健身房突然关门老板失联，预付的年卡费用无法退还，请求帮助退款。",
            "channel": "visit",
            "received_at": received,
        },
    ).json()
    sign_in(page, CLERK_KEY)
    row = page.locator(f'#queues-table tr[data-queue="{late["queue"]}"]')
    assert int(row.locator('td[data-col="hand_over_overdue"]').inner_text()) >= 1
    row.get_by_role("button").click()
    item = page.locator(f'#items-table tr[data-id="{late["id"]}"]')
    expect(item).to_have_class("overdue")
    expect(item).to_contain_text("已超期 3 天")
    # Oldest due first: the overdue petition heads the list.
    expect(page.locator("#items-table tbody tr").first).to_have_attribute("data-id", str(late["id"]))

    page.set_viewport_size({"width": 400, "height": 800})
    page.locator("#back-to-queues").click()
    classify(page, HOUSING_TEXT)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a narrow window"
    shot(page, "13-narrow-window")
