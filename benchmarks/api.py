"""Latency and throughput of the real server on loopback: /healthz vs /v1/classify vs /v1/petitions.

Starts `uvicorn service.app:create_app --factory` as a subprocess on a free 127.0.0.1 port with a
throw-away SQLite database, waits for /readyz, then drives each endpoint with a bounded number of
requests at a fixed concurrency (closed loop: each of C clients sends its next request when the
previous answer arrives). The load generator runs on the same machine, so it competes for the
same cores; the /healthz row shows what that costs.

    .venv/bin/python benchmarks/api.py [--requests 1000] [--concurrency 50] [--registry models/]

Targets (issue 4, 2-core machine): classify p99 < 30 ms at 50 concurrent; >= 300 submissions/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.settings import Settings  # noqa: E402
from triage.bootstrap import ensure_model  # noqa: E402

KEY = {"X-API-Key": "dev-clerk"}


@dataclass
class Result:
    name: str
    latencies: list[float]
    seconds: float
    errors: int

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_texts(limit: int = 2000) -> list[str]:
    with (ROOT / "data" / "petitions.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle][:limit]


class Connection:
    """A minimal HTTP/1.1 keep-alive client: the load generator must cost far less than the server.

    (httpx's async client spends more CPU per request than the /healthz handler itself, which on a
    2-core machine would measure the client, not the service.)
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: dict | None) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nX-API-Key: {KEY['X-API-Key']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        self.writer.write(head + payload)
        assert self.reader is not None
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def drive(
    host: str, port: int, name: str, method: str, path: str, bodies: list[dict | None], concurrency: int
) -> Result:
    latencies: list[float] = []
    errors = 0
    position = 0

    async def worker() -> None:
        nonlocal position, errors
        connection = Connection(host, port)
        try:
            while position < len(bodies):
                body = bodies[position]
                position += 1
                started = time.perf_counter()
                status = await connection.request(method, path, body)
                elapsed = time.perf_counter() - started
                if status >= 300:
                    errors += 1
                else:
                    latencies.append(elapsed)
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, latencies, time.perf_counter() - started, errors)


async def run(port: int, requests: int, concurrency: int, texts: list[str]) -> list[Result]:
    host = "127.0.0.1"
    rng = random.Random(0)
    warm = [{"text": rng.choice(texts)} for _ in range(concurrency * 2)]
    await drive(host, port, "warm-up", "POST", "/v1/classify", warm, concurrency)
    results = [await drive(host, port, "GET /healthz", "GET", "/healthz", [None] * requests, concurrency)]
    classify = [{"text": rng.choice(texts)} for _ in range(requests)]
    results.append(await drive(host, port, "POST /v1/classify", "POST", "/v1/classify", classify, concurrency))
    submit = [
        {"text": rng.choice(texts), "channel": rng.choice(["letter", "visit", "web", "phone"])} for _ in range(requests)
    ]
    results.append(await drive(host, port, "POST /v1/petitions", "POST", "/v1/petitions", submit, concurrency))
    return results


def wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit("server did not become ready")


@contextmanager
def running_server(registry: Path, synchronous: str = "FULL", workers: int = 1) -> Iterator[tuple[int, float]]:
    """The real server on a free loopback port with a throw-away database: (port, seconds until ready)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="triage-bench-") as scratch:
        env = {
            **os.environ,
            "TRIAGE_REGISTRY": str(registry),
            "TRIAGE_DATABASE_URL": f"sqlite:///{scratch}/bench.db",
            "TRIAGE_SQLITE_SYNCHRONOUS": synchronous,
        }
        env.pop("TRIAGE_API_KEYS", None)
        command = [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--no-access-log", "--workers", str(workers)]
        with (Path(scratch) / "server.log").open("wb") as sink:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=sink)
            try:
                started = time.perf_counter()
                wait_ready(f"http://127.0.0.1:{port}", process)
                yield port, time.perf_counter() - started
            finally:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per endpoint")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--registry", type=Path, default=None, help="model registry (default: models/)")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (each loads the model)")
    args = parser.parse_args()

    registry = args.registry or Settings().registry
    ensure_model(registry, echo=lambda message: print(message, file=sys.stderr))
    with running_server(registry, args.synchronous, args.workers) as (port, ready_seconds):
        print(
            f"server ready in {ready_seconds:.1f}s (model load included); "
            f"{args.requests} requests per endpoint at concurrency {args.concurrency}, "
            f"SQLite synchronous={args.synchronous}, {args.workers} worker process(es)"
        )
        results = asyncio.run(run(port, args.requests, args.concurrency, load_texts()))
    report(results)


def report(results: list[Result]) -> None:
    baseline = results[0]
    print(
        f"{'endpoint':<20} {'ok':>6} {'err':>4} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} "
        f"{'p99 vs healthz':>15} {'req/s vs healthz':>17}"
    )
    for result in results:
        print(
            f"{result.name:<20} {len(result.latencies):>6} {result.errors:>4} {result.percentile(0.5):>8.1f} "
            f"{result.percentile(0.99):>8.1f} {result.throughput:>8.1f} "
            f"{result.percentile(0.99) / baseline.percentile(0.99):>14.1f}x "
            f"{result.throughput / baseline.throughput:>16.2f}x"
        )
    classify, submit = results[1], results[2]
    print(
        f"target classify p99 < 30 ms: {'met' if classify.percentile(0.99) < 30 else 'MISSED'} "
        f"({classify.percentile(0.99):.1f} ms)"
    )
    print(f"target >= 300 submissions/s: {'met' if submit.throughput >= 300 else 'MISSED'} ({submit.throughput:.1f}/s)")


if __name__ == "__main__":
    main()
