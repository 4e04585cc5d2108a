"""Helpers for tests that run the real server as a subprocess on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx


def server_command(port: int, *extra: str) -> list[str]:
    """The service on loopback, as `make run` would start it (uvicorn with the app factory)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "service.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra,
    ]


ROOT = Path(__file__).resolve().parents[1]


def start_server(
    registry: Path, database_url: str, port: int, log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The service as a subprocess with the documented development keys, its output appended to `log`."""
    environment = {**os.environ, "TRIAGE_REGISTRY": str(registry), "TRIAGE_DATABASE_URL": database_url, **(env or {})}
    environment.pop("TRIAGE_API_KEYS", None)
    with log.open("ab") as sink:
        return subprocess.Popen(server_command(port), cwd=ROOT, env=environment, stdout=sink, stderr=sink)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 150) -> None:
    """Poll /readyz until the server answers 200; fail early if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited with {process.returncode}"
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server did not become ready in {timeout:.0f} s")
