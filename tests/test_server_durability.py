"""A real uvicorn process is SIGKILLed in the middle of a stream of submissions and restarted on the
same database file: every petition that got a 201 must be there, and nothing may be duplicated."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, start_server, wait_ready

KEY = {"X-API-Key": "dev-clerk"}
TEXTS = [
    "开发商逾期交房三年，业主多次维权无果，请求住建部门督促交付。",
    "某理财平台暴雷无法兑付，涉及上百名投资人，请求立案追缴。",
    "健身房突然关门老板失联，预付的年卡费用无法退还，请求帮助退款。",
    "孩子学校食堂卫生堪忧，多名学生腹泻，请求教育部门调查处理。",
]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_sigkill_mid_stream_loses_no_acknowledged_petition(
    tmp_path: Path,
    registry_root: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    database = tmp_path / "durable.db"
    log = tmp_path / "server.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    processes.append(start_server(registry_root, f"sqlite:///{database}", port, log))
    wait_ready(base, processes[-1])

    acknowledged: dict[str, int] = {}  # external_id -> petition id, for every 201/200
    uncertain: set[str] = set()  # sent, but the connection died before an answer
    lock = threading.Lock()
    counter = iter(range(1_000_000))
    stop = threading.Event()

    def stream(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            while not stop.is_set():
                with lock:
                    number = next(counter)
                external_id = f"dur-{number}"
                body = {
                    "text": f"{TEXTS[number % len(TEXTS)]}（第{number}件）",
                    "channel": "web",
                    "external_id": external_id,
                }
                try:
                    response = client.post("/v1/petitions", json=body, headers=KEY)
                except httpx.HTTPError:
                    with lock:
                        uncertain.add(external_id)
                    continue
                with lock:
                    if response.status_code in (200, 201):
                        acknowledged[external_id] = response.json()["id"]
                    else:
                        uncertain.add(external_id)

    workers = [threading.Thread(target=stream, args=(slot,)) for slot in range(6)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    processes[-1].send_signal(signal.SIGKILL)  # mid-stream: requests are in flight right now
    processes[-1].wait(timeout=10)
    time.sleep(0.5)
    stop.set()
    for worker in workers:
        worker.join(timeout=30)
    assert len(acknowledged) >= 30, "too few submissions before the kill to mean anything"

    processes.append(start_server(registry_root, f"sqlite:///{database}", port, log))
    wait_ready(base, processes[-1])
    with httpx.Client(base_url=base, timeout=30) as client:
        for external_id, petition_id in acknowledged.items():
            response = client.get(f"/v1/petitions/{petition_id}", headers=KEY)
            assert response.status_code == 200, f"acknowledged petition {petition_id} is missing"
            assert response.json()["external_id"] == external_id
        # Clients retry what they never got an answer for; the external id makes that safe.
        for external_id in sorted(uncertain - set(acknowledged)):
            number = int(external_id.split("-")[1])
            body = {
                "text": f"{TEXTS[number % len(TEXTS)]}（第{number}件）",
                "channel": "web",
                "external_id": external_id,
            }
            retried = client.post("/v1/petitions", json=body, headers=KEY)
            assert retried.status_code in (200, 201), retried.text
            acknowledged[external_id] = retried.json()["id"]
        open_total = sum(queue["open"] for queue in client.get("/v1/queues", headers=KEY).json()["queues"])
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT id, external_id FROM petitions").fetchall()
    assert len(rows) == len(acknowledged) == open_total, "a petition was lost or stored twice"
    assert {external for _, external in rows} == set(acknowledged)
    assert {petition for petition, _ in rows} == set(acknowledged.values())
