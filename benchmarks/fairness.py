"""How long a short classify waits behind a large batch, before and after fair scheduling.

The scenario of the hardening report: a clerk submits a batch of 5 texts of 20,000 characters, and a
short `POST /v1/classify` arrives --delay seconds later (default 1 s, when the batch is being
predicted). Two real servers on loopback (`uvicorn service.app:create_app --factory`, throw-away
SQLite each): one with `TRIAGE_PREDICT_SLICE_CHARS=0` (the old behaviour: each request whole, first
come first served), one with the default slicing. Each reports the short request's latency alone and
behind the batch (median of --rounds), and the ratio. With slicing the wait is bounded by one slice:
at most 4,000 characters of each waiting request, or one text when a single text is longer.

    .venv/bin/python benchmarks/fairness.py [--rounds 3] [--registry models/]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.settings import Settings  # noqa: E402
from tests.support import free_port, wait_ready  # noqa: E402
from triage.bootstrap import ensure_model  # noqa: E402

KEY = {"X-API-Key": "dev-clerk"}
SHORT = {"text": "小区物业乱收停车费，多次反映无果，请求查处。"}


def long_texts(count: int = 5, chars: int = 20_000) -> list[str]:
    lines = (ROOT / "data" / "petitions.jsonl").read_text(encoding="utf-8").splitlines()
    corpus = "".join(json.loads(line)["text"] for line in lines[:2000])
    return [corpus[i * chars : (i + 1) * chars] for i in range(count)]


def short_latency(client: httpx.Client) -> float:
    started = time.perf_counter()
    client.post("/v1/classify", json=SHORT, headers=KEY, timeout=120).raise_for_status()
    return time.perf_counter() - started


def measure(registry: Path, slice_chars: int, rounds: int, delay: float) -> tuple[float, float, float]:
    """(short alone, short behind the batch, the batch itself), seconds, medians over rounds."""
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        env = {
            **os.environ,
            "TRIAGE_REGISTRY": str(registry),
            "TRIAGE_DATABASE_URL": f"sqlite:///{Path(folder) / 'bench.db'}",
            "TRIAGE_PREDICT_SLICE_CHARS": str(slice_chars),
            "TRIAGE_LOG_LEVEL": "WARNING",
        }
        command = [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory", "--port", str(port)]
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, process)
            texts = long_texts()
            alone, behind, batch_times = [], [], []
            with httpx.Client(base_url=base) as client:
                short_latency(client)  # warm
                for _ in range(rounds):
                    alone.append(short_latency(client))
                    items = [{"text": text, "channel": "web"} for text in texts]
                    finished: list[float] = []

                    def send_batch(items: list[dict[str, str]] = items, finished: list[float] = finished) -> None:
                        started = time.perf_counter()
                        with httpx.Client(base_url=base) as other:
                            other.post("/v1/petitions/batch", json={"items": items}, headers=KEY, timeout=300)
                        finished.append(time.perf_counter() - started)

                    thread = threading.Thread(target=send_batch)
                    thread.start()
                    time.sleep(delay)
                    behind.append(short_latency(client))
                    thread.join()
                    batch_times.append(finished[0])
            return statistics.median(alone), statistics.median(behind), statistics.median(batch_times)
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--registry", type=Path, default=None)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds between the batch and the short request")
    args = parser.parse_args()
    registry = args.registry or Settings().registry
    ensure_model(registry, echo=print)
    print(f"short classify {args.delay:.1f} s after a batch of 5 x 20,000 characters (median of {args.rounds} rounds)")
    print(f"{'scheduler':<28}{'alone ms':>10}{'behind ms':>11}{'batch ms':>10}{'delay x':>9}")
    results = {}
    for name, slice_chars in (("before: whole requests", 0), ("after: 4,000-char slices", 4_000)):
        alone, behind, batch = measure(registry, slice_chars, args.rounds, args.delay)
        results[name] = behind
        print(f"{name:<28}{alone * 1000:>10.0f}{behind * 1000:>11.0f}{batch * 1000:>10.0f}{behind / alone:>9.1f}")
    before, after = results.values()
    print(f"the short request waits {before / after:.1f}x less with fair slicing")


if __name__ == "__main__":
    main()
