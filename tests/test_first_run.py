"""The README's first command on a fresh checkout: `triage serve` with an empty registry trains the
default model from data/, then serves it on 127.0.0.1 with the SQLite queue."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from model.registry import Registry
from tests.support import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_serve_trains_the_default_model_when_the_registry_is_empty(tmp_path: Path) -> None:
    registry, database, port = tmp_path / "models", tmp_path / "var" / "triage.db", free_port()
    env = {**os.environ, "TRIAGE_REGISTRY": str(registry), "TRIAGE_DATABASE_URL": f"sqlite:///{database}"}
    env.pop("TRIAGE_API_KEYS", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "triage.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=sink,
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, timeout=360)
        current = Registry(registry).current()
        assert current is not None
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/model", headers={"X-API-Key": "dev-clerk"}, timeout=10)
        assert answer.status_code == 200 and answer.json()["version"] == current
        assert database.is_file()
        printed = log.read_text(encoding="utf-8")
        assert "训练默认模型" in printed and "default model" in printed
    finally:
        process.kill()
        process.wait(timeout=10)
