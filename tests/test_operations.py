"""Behind a reverse proxy: the real uvicorn server (in this process, on loopback) with a sub-path and
X-Forwarded-For believed only from the configured trusted proxies, as docs/operations.md sets it up."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from service.app import create_app
from service.settings import Settings
from tests.support import free_port

CLERK = {"X-API-Key": "dev-clerk"}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.fields.append(getattr(record, "fields", {}))


@contextmanager
def serving(settings: Settings, forwarded_allow_ips: str, root_path: str) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        root_path=root_path,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        log_config=None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.mark.parametrize(("trusted", "expected"), [("127.0.0.1", "203.0.113.7"), ("192.0.2.1", "127.0.0.1")])
def test_forwarded_for_is_believed_only_from_trusted_proxies_and_the_sub_path_works(
    tmp_path: Path, registry_root: Path, trusted: str, expected: str
) -> None:
    settings = Settings(registry=registry_root, database_url=f"sqlite:///{tmp_path / 'proxy.db'}", api_keys=None)
    records = Records()
    access = logging.getLogger("triage.access")
    access.addHandler(records)
    try:
        with serving(settings, trusted, "/triage") as base:
            forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
            assert httpx.get(f"{base}/v1/queues", headers={**CLERK, **forwarded}).status_code == 200
            # The proxy strips /triage; links the app hands out carry it.
            schema = httpx.get(f"{base}/openapi.json").json()
            assert schema["servers"] == [{"url": "/triage"}]
            docs = httpx.get(f"{base}/docs").text
            assert "/triage/openapi.json" in docs and "/triage/docs/static/swagger-ui-bundle.js" in docs
            page = httpx.get(f"{base}/").text
            assert 'src="console/static/console.js"' in page  # relative: resolves under /triage/
            assert 'src="console/static/common.js"' in page and 'href="hotspots"' in page
            hotspots_page = httpx.get(f"{base}/hotspots").text
            assert 'src="console/static/common.js"' in hotspots_page and 'href="./"' in hotspots_page
            assert httpx.get(f"{base}/console/static/common.js").status_code == 200
    finally:
        access.removeHandler(records)
    clients = [fields.get("client") for fields in records.fields if fields.get("route") == "/v1/queues"]
    assert clients == [expected]
