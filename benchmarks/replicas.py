"""Submissions per second and claim latency: 1 replica on SQLite (the baseline) beside 1 and 2 replicas on
one PostgreSQL database, same run, same load.

Each configuration gets a fresh database and fresh `uvicorn service.app:create_app` processes on loopback
(one worker each); PostgreSQL is a throw-away cluster started by this script (initdb + pg_ctl, as in the
tests; needs Debian's `postgresql`). The load: `--submissions` POST /v1/petitions from `--concurrency`
clients spread round-robin over the replicas (closed loop), then the same number of claims
(POST /v1/queues/{queue}/claim) the same way. The load generator shares the machine's cores with
the replicas (and, for PostgreSQL, the database server), so a second replica on the same machine
shows what the database path costs, not what a second machine would add.

    .venv/bin/python benchmarks/replicas.py [--submissions 400] [--concurrency 16] [--registry models/]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.settings import Settings  # noqa: E402
from store import known_queues  # noqa: E402
from tests.postgres import PostgresCluster, missing_reason  # noqa: E402
from tests.support import free_port, start_server, wait_ready  # noqa: E402
from triage.bootstrap import ensure_model  # noqa: E402

CLERK = {"X-API-Key": "dev-clerk"}
ADMIN = {"X-API-Key": "dev-admin"}
TEXTS = [
    "开发商逾期交房三年，业主多次维权无果，请求住建部门督促交付。",
    "某理财平台暴雷无法兑付，涉及上百名投资人，请求立案追缴。",
    "健身房突然关门老板失联，预付的年卡费用无法退还，请求帮助退款。",
    "孩子学校食堂卫生堪忧，多名学生腹泻，请求教育部门调查处理。",
]


@dataclass(frozen=True)
class Row:
    name: str
    submissions_per_s: float
    submit_p99_ms: float
    claim_p50_ms: float
    claim_p99_ms: float
    claimed: int
    errors: int


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000 if ordered else float("nan")


async def drive(
    bases: list[str], submissions: int, concurrency: int, tag: str
) -> tuple[float, list[float], list[float], int, int]:
    counter = itertools.count()
    submit_latency: list[float] = []
    claim_latency: list[float] = []
    errors = 0
    claimed = 0
    queues = known_queues()

    async def submitter(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while (number := next(counter)) < submissions:
            body = {"text": f"{TEXTS[number % len(TEXTS)]}（{tag}第{number}件）", "channel": "web"}
            started = time.perf_counter()
            response = await client.post(f"{bases[number % len(bases)]}/v1/petitions", json=body, headers=CLERK)
            submit_latency.append(time.perf_counter() - started)
            errors += response.status_code != 201

    async def claimer(client: httpx.AsyncClient, slot: int) -> None:
        nonlocal errors, claimed
        for turn in itertools.count(slot):
            if claimed >= submissions or turn - slot > submissions * 3:
                return
            queue = queues[turn % len(queues)]
            started = time.perf_counter()
            response = await client.post(f"{bases[turn % len(bases)]}/v1/queues/{queue}/claim", headers=ADMIN)
            claim_latency.append(time.perf_counter() - started)
            if response.status_code == 200:
                claimed += 1
            elif response.status_code != 204:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(submitter(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        await asyncio.gather(*(claimer(client, slot) for slot in range(concurrency)))
    return submissions / seconds, submit_latency, claim_latency, claimed, errors


def run(name: str, database_url: str, replicas: int, args: argparse.Namespace, logs: Path) -> Row:
    processes: list[subprocess.Popen[bytes]] = []
    try:
        ports = [free_port() for _ in range(replicas)]
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for port in ports:
            processes.append(start_server(args.registry, database_url, port, logs / f"{name}-{port}.log"))
        for base, process in zip(bases, processes, strict=True):
            wait_ready(base, process)
        asyncio.run(drive(bases, 40, args.concurrency, "warm-up"))  # jieba, pools, caches
        rate, submit, claim, claimed, errors = asyncio.run(drive(bases, args.submissions, args.concurrency, name))
        return Row(
            name, rate, percentile(submit, 0.99), percentile(claim, 0.5), percentile(claim, 0.99), claimed, errors
        )
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--registry", type=Path, default=Settings().registry)
    args = parser.parse_args()
    reason = missing_reason()
    if reason:
        sys.exit(f"PostgreSQL 不可用 / PostgreSQL unavailable: {reason}")
    ensure_model(args.registry)
    cluster = PostgresCluster.start()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="triage-bench-") as folder:
        logs = Path(folder)
        try:
            rows.append(run("sqlite-1", f"sqlite:///{logs / 'bench.db'}", 1, args, logs))
            rows.append(run("postgresql-1", cluster.create_database("bench1"), 1, args, logs))
            rows.append(run("postgresql-2", cluster.create_database("bench2"), 2, args, logs))
        finally:
            cluster.remove()
    base = rows[0]
    print(f"\n{args.submissions} submissions then claims, {args.concurrency} concurrent clients, one machine")
    header = ("config", "submit/s", "x sqlite", "submit p99", "claim p50", "claim p99", "claimed", "errors")
    print("".join(f"{title:<14}" if i == 0 else f"{title:>11}" for i, title in enumerate(header)))
    for row in rows:
        print(
            f"{row.name:<14}{row.submissions_per_s:>11.1f}{row.submissions_per_s / base.submissions_per_s:>11.2f}"
            f"{row.submit_p99_ms:>8.0f} ms{row.claim_p50_ms:>8.1f} ms{row.claim_p99_ms:>8.1f} ms"
            f"{row.claimed:>11}{row.errors:>11}"
        )


if __name__ == "__main__":
    main()
