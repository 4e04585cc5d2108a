"""Hardening of the `triage` command line and its files (issue 12): formula injection in outputs, bad
configuration, unparseable requests to `triage serve`, registry paths. Each failed before its fix."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from tests.support import free_port, wait_ready
from tests.test_batch import classify, read_csv, write_csv
from triage.cli import app

runner = CliRunner()
GOOD = "我家小区物业费一年涨了两次，业委会也不管，要求住建部门查处"
FORMULAS = ["=1+1", "+SUM(A1:A2)", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", '=HYPERLINK("http://x","y")']
# Ids are stripped when read, so a leading tab or carriage return is gone before output.
SAFE_IDS = ["'" + formula if formula == formula.strip() else formula.strip() for formula in FORMULAS]


# -- 2. formula injection ---------------------------------------------------------------------------


def test_csv_and_errors_file_neutralise_formulas(registry_root: Path, tmp_path: Path) -> None:
    rows = [(formula, GOOD if i % 2 else "", "") for i, formula in enumerate(FORMULAS)]
    source = write_csv(tmp_path / "in.csv", rows)
    out, errors = tmp_path / "out.csv", tmp_path / "errors.csv"
    code, output = classify(registry_root, str(source), "-o", str(out), "--errors", str(errors), "-j", "1")
    assert code == 0, output
    assert [row["id"] for row in read_csv(out)] == SAFE_IDS
    assert [row["id"] for row in read_csv(errors)] == SAFE_IDS[::2]


def test_xlsx_output_holds_text_cells_never_formulas(registry_root: Path, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [(formula, GOOD, "") for formula in FORMULAS])
    out = tmp_path / "out.xlsx"
    code, output = classify(registry_root, str(source), "-o", str(out), "-j", "1")
    assert code == 0, output
    sheet = load_workbook(out).active
    ids = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert all(cell.data_type == "s" for cell in ids)
    assert [cell.value for cell in ids] == SAFE_IDS


# -- 8. configuration and registry -------------------------------------------------------------------


def test_promote_refuses_a_path_outside_the_registry(registry_root: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["promote", "../../x", "--registry", str(registry_root)])
    assert result.exit_code != 0 and "invalid model version name" in result.output


@pytest.mark.slow
def test_bad_api_keys_setting_stops_serve_with_a_message(tmp_path: Path) -> None:
    env = {**os.environ, "TRIAGE_API_KEYS": '{"k": {"role": "wizard"}}', "TRIAGE_REGISTRY": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "triage", "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "TRIAGE_API_KEYS" in done.stderr and "配置" in done.stderr and "Traceback" not in done.stderr
    env["TRIAGE_API_KEYS"] = "not json"
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "TRIAGE_API_KEYS" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_serve_answers_unparseable_requests_in_the_error_shape(registry_root: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "TRIAGE_REGISTRY": str(registry_root),
        "TRIAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "triage", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, timeout=120)
        for length in (b"abc", b"-1"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n{}")
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
            assert json.loads(body)["error"]["code"] == "bad_request"
    finally:
        process.terminate()
        process.wait(timeout=20)
