"""The live app against its own OpenAPI schema (schemathesis): a real uvicorn on 127.0.0.1, bounded
examples per operation. No answer may be a 5xx; status codes, content types and bodies must be the ones
the schema declares."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"st-admin": {"role": "admin", "name": "st-admin"}}


@pytest.fixture(scope="module")
def base_url(registry_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("schemathesis")
    port = free_port()
    env = {
        **os.environ,
        "TRIAGE_REGISTRY": str(registry_root),
        "TRIAGE_DATABASE_URL": f"sqlite:///{folder / 'st.db'}",
        "TRIAGE_API_KEYS": json.dumps(KEYS),
        "TRIAGE_SQLITE_SYNCHRONOUS": "NORMAL",
        "TRIAGE_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, timeout=120)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.slow
def test_api_conforms_to_its_schema(base_url: str) -> None:
    api = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=base_url, headers={"X-API-Key": "st-admin"}, checks=checks)

        check()
