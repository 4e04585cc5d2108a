"""Two real uvicorn replicas on one PostgreSQL database, with clients submitting and claiming through both
at once; one replica is SIGKILLed midway. Every acknowledged petition must be stored exactly once, no
petition may be handed to two claimers, and the survivor keeps serving. Both replicas also follow a
`promote` of the shared model registry without a restart."""

from __future__ import annotations

import itertools
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from model.registry import Registry
from store.engine import sqlalchemy_url
from tests.postgres import PostgresCluster
from tests.support import free_port, start_server, wait_ready
from tests.test_api import republished_registry
from tests.test_server_durability import TEXTS

CLERK = {"X-API-Key": "dev-clerk"}
ADMIN = {"X-API-Key": "dev-admin"}
CLAIM_QUEUES = ("housing", "finance_regulation", "market_regulation", "education", "manual_triage")
SUBMISSIONS = 300  # attempts in all: bounded, a few hundred requests


@dataclass
class Ledger:
    """What the clients saw, shared by their threads."""

    acknowledged: dict[str, int] = field(default_factory=dict)  # external id -> petition id (200/201)
    uncertain: set[str] = field(default_factory=set)  # sent, no answer (the replica died under it)
    claims: list[int] = field(default_factory=list)  # petition ids handed out, in order
    after_kill: dict[str, int] = field(default_factory=lambda: {"submitted": 0, "claimed": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)


def body(number: int) -> dict[str, Any]:
    return {"text": f"{TEXTS[number % len(TEXTS)]}（第{number}件）", "channel": "web", "external_id": f"rep-{number}"}


def wait_for_version(bases: list[str], version: str, seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        seen = [httpx.get(f"{base}/v1/model", headers=CLERK, timeout=10).json()["version"] for base in bases]
        if set(seen) == {version} or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_replicas_one_killed_lose_nothing_and_hand_out_nothing_twice(
    tmp_path: Path, trained: Any, postgres: PostgresCluster, processes: list[subprocess.Popen[bytes]]
) -> None:
    registry: Registry = republished_registry(trained.folder, tmp_path / "registry")
    url = postgres.create_database("replicas")
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    poll = {"TRIAGE_MODEL_POLL_SECONDS": "0.5"}
    for port in ports:  # both start (and migrate the empty database) at the same time
        processes.append(start_server(registry.root, url, port, tmp_path / f"replica-{port}.log", poll))
    for base, process in zip(bases, processes, strict=True):
        wait_ready(base, process)

    registry.promote("v-two")  # one promotion reaches every replica
    assert wait_for_version(bases, "v-two", 15) == ["v-two", "v-two"]

    ledger = Ledger()
    numbers = itertools.count()
    killed = threading.Event()
    stop = threading.Event()

    def target(number: int) -> str:
        return bases[1] if killed.is_set() else bases[number % 2]

    def submitter() -> None:
        with httpx.Client(timeout=20) as client:
            while not stop.is_set():
                with ledger.lock:
                    number = next(numbers)
                if number >= SUBMISSIONS:
                    return
                payload = body(number)
                try:
                    response = client.post(f"{target(number)}/v1/petitions", json=payload, headers=CLERK)
                except httpx.HTTPError:
                    with ledger.lock:
                        ledger.uncertain.add(payload["external_id"])
                    continue
                with ledger.lock:
                    if response.status_code in (200, 201):
                        ledger.acknowledged[payload["external_id"]] = response.json()["id"]
                        ledger.after_kill["submitted"] += killed.is_set()
                    else:
                        ledger.uncertain.add(payload["external_id"])

    def claimer(slot: int) -> None:
        with httpx.Client(timeout=20) as client:
            for turn in itertools.count():
                if stop.is_set():
                    return
                queue = CLAIM_QUEUES[turn % len(CLAIM_QUEUES)]
                try:
                    response = client.post(f"{target(turn + slot)}/v1/queues/{queue}/claim", headers=ADMIN)
                except httpx.HTTPError:
                    continue  # died with the replica: its lease may be held, it is not handed out twice
                if response.status_code == 200:
                    with ledger.lock:
                        ledger.claims.append(response.json()["id"])
                        ledger.after_kill["claimed"] += killed.is_set()
                else:
                    assert response.status_code == 204, response.text
                    time.sleep(0.02)

    submitters = [threading.Thread(target=submitter) for _ in range(4)]
    claimers = [threading.Thread(target=claimer, args=(slot,)) for slot in range(2)]
    for thread in (*submitters, *claimers):
        thread.start()
    deadline = time.monotonic() + 60
    while len(ledger.acknowledged) < SUBMISSIONS // 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    processes[0].send_signal(signal.SIGKILL)  # mid-stream: requests to it are in flight right now
    killed.set()
    processes[0].wait(timeout=10)
    for thread in submitters:
        thread.join(timeout=120)
    time.sleep(1)  # let the claimers drain what the last submissions queued
    stop.set()
    for thread in claimers:
        thread.join(timeout=60)

    assert len(ledger.acknowledged) >= SUBMISSIONS // 3, "too few submissions before the kill to mean anything"
    assert ledger.after_kill["submitted"] > 0 and ledger.after_kill["claimed"] > 0, "the survivor stopped serving"
    assert len(ledger.claims) == len(set(ledger.claims)), "a petition was handed to two claimers"

    # Clients retry what they never got an answer for; the external id makes that safe.
    with httpx.Client(base_url=bases[1], timeout=30) as client:
        for external_id in sorted(ledger.uncertain - set(ledger.acknowledged)):
            retried = client.post("/v1/petitions", json=body(int(external_id.split("-")[1])), headers=CLERK)
            assert retried.status_code in (200, 201), retried.text
            ledger.acknowledged[external_id] = retried.json()["id"]
        assert client.get("/readyz").status_code == 200

    engine = create_engine(sqlalchemy_url(url))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, external_id FROM petitions")).all()
        claims_per_petition = conn.execute(
            text("SELECT petition_id, count(*) FROM petition_history WHERE action = 'claimed' GROUP BY petition_id")
        ).all()
        migrations = conn.execute(text("SELECT version FROM schema_migrations ORDER BY version")).scalars().all()
    engine.dispose()
    assert len(rows) == len({external for _, external in rows}) == len(ledger.acknowledged), "lost or duplicated"
    assert {external: petition for petition, external in rows} == ledger.acknowledged
    assert all(count == 1 for _, count in claims_per_petition), "a petition was claimed twice"
    assert set(ledger.claims) <= {petition for petition, _ in claims_per_petition}
    assert migrations == sorted(set(migrations)), "a migration ran twice"
