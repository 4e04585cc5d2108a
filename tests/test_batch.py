"""Backlog re-classification: encodings, bad rows, order with several jobs, resume after a kill, compare."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from typer.testing import CliRunner

from batch.classify import ClassifyOptions, progress_path, validate
from batch.writers import OUTPUT_FIELDS
from training.dataset import load_corpus
from training.io import Row
from triage.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def backlog() -> list[tuple[str, str, str]]:
    """(id, text, old department) rows from the corpus test split."""
    corpus = load_corpus().subset("test")
    return [
        (f"B{i:05d}", text, dep)
        for i, (text, dep) in enumerate(zip(corpus.texts, corpus.departments or [], strict=True))
    ]


def write_csv(path: Path, rows: list[tuple], encoding: str = "utf-8", header: tuple = ("id", "text", "old")) -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def classify(registry: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["classify", *args, "--registry", str(registry), "--quiet"])
    return result.exit_code, result.output


def test_output_contract_and_gbk_and_bom_inputs_give_the_same_result(
    registry_root: Path, backlog: list, tmp_path: Path
) -> None:
    rows = backlog[:60]
    outputs = []
    for encoding in ("gb18030", "utf-8-sig", "utf-8"):
        source = write_csv(tmp_path / f"in-{encoding}.csv", rows, encoding=encoding)
        out = tmp_path / f"out-{encoding}.csv"
        code, output = classify(registry_root, str(source), "--output", str(out), "--jobs", "1")
        assert code == 0, output
        outputs.append(read_csv(out))
    assert outputs[0] == outputs[1] == outputs[2]
    first = outputs[0][0]
    assert list(first) == OUTPUT_FIELDS
    assert first["id"] == "B00000" and first["error"] == ""
    top3 = first["departments_top3"].split("|")
    assert len(top3) == 3 and all(":" in part for part in top3)
    assert first["needs_review"] in {"true", "false"} and 0 < float(first["domain_confidence"]) <= 1


def test_bad_rows_get_an_error_and_the_run_goes_on(registry_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    good = "我家小区物业费一年涨了两次，业委会也不管，要求住建部门查处".encode()
    source.write_bytes(
        b"id,text\r\n"
        + b"1,"
        + good
        + b"\r\n"
        + b",no id here\r\n"
        + b"3,   \r\n"
        + b"4,\xff\xfe broken bytes\r\n"
        + b"5,"
        + ("长" * 20001).encode()
        + b"\r\n"
        + b'6,"quoted\nnewline\t'
        + good
        + b'"\r\n'
    )
    out, errors = tmp_path / "out.csv", tmp_path / "errors.csv"
    code, output = classify(
        registry_root, str(source), "-o", str(out), "--encoding", "utf-8", "--errors", str(errors), "-j", "1"
    )
    assert code == 0, output
    rows = read_csv(out)
    assert [row["id"] for row in rows] == ["1", "", "3", "4", "5", "6"]
    assert [row["error"].split(":")[0] for row in rows] == [
        "",
        "missing_id",
        "empty_text",
        "undecodable_bytes",
        "text_too_long",
        "",
    ]
    assert rows[5]["domain"] == "real_estate"
    assert len(read_csv(errors)) == 4
    assert "失败 failed 4" in output


def test_unreadable_file_and_unknown_column_fail_with_a_message(registry_root: Path, tmp_path: Path) -> None:
    code, output = classify(registry_root, str(tmp_path / "missing.csv"))
    assert code != 0 and "file not found" in output
    source = write_csv(tmp_path / "in.csv", [("1", "x", "y")], header=("编号", "内容", "old"))
    code, output = classify(registry_root, str(source), "-o", str(tmp_path / "o.csv"))
    assert code != 0 and "unknown column" in output and "编号" in output
    assert not (tmp_path / "o.csv").exists()


def test_several_jobs_keep_input_order_and_agree_with_one_job(
    registry_root: Path, backlog: list, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "in.csv", backlog[:400])
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert classify(registry_root, str(source), "-o", str(one), "-j", "1", "--chunk-size", "32")[0] == 0
    assert classify(registry_root, str(source), "-o", str(two), "-j", "2", "--chunk-size", "32")[0] == 0
    assert [row["id"] for row in read_csv(two)] == [row[0] for row in backlog[:400]]
    assert one.read_bytes() == two.read_bytes()


def test_jsonl_xlsx_and_stdout_outputs(registry_root: Path, backlog: list, tmp_path: Path) -> None:
    workbook = Workbook()
    workbook.active.append(["id", "text"])
    for identifier, text, _ in backlog[:20]:
        workbook.active.append([identifier, text])
    workbook.save(tmp_path / "in.xlsx")
    assert classify(registry_root, str(tmp_path / "in.xlsx"), "-o", str(tmp_path / "o.jsonl"), "-j", "1")[0] == 0
    records = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == 20 and set(records[0]) == set(OUTPUT_FIELDS)
    assert classify(registry_root, str(tmp_path / "in.xlsx"), "-o", str(tmp_path / "o.xlsx"), "-j", "1")[0] == 0
    sheet = load_workbook(tmp_path / "o.xlsx", read_only=True).active
    assert [cell for cell in next(sheet.iter_rows(values_only=True))] == OUTPUT_FIELDS
    code, output = classify(registry_root, str(tmp_path / "in.xlsx"), "-j", "1")
    assert code == 0 and output.count("\n") >= 21 and output.startswith("id,domain")


def test_compare_col_marks_changes_and_summarises_flows(registry_root: Path, backlog: list, tmp_path: Path) -> None:
    rows = [(i, text, "general") for i, text, _ in backlog[:50]]
    source = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out.csv"
    code, output = classify(registry_root, str(source), "-o", str(out), "--compare-col", "old", "-j", "1")
    assert code == 0, output
    result = read_csv(out)
    changed = [row for row in result if row["changed"] == "true"]
    assert changed and all(row["department"] != "general" for row in changed)
    assert f"re-routed: {len(changed)} of 50" in output
    assert "general ->" in output


def test_resume_after_kill_matches_an_uninterrupted_run(registry_root: Path, backlog: list, tmp_path: Path) -> None:
    rows = [(f"{i}-{j}", text, dep) for j in range(4) for i, text, dep in backlog]
    source = write_csv(tmp_path / "in.csv", rows)
    reference, resumed = tmp_path / "reference.csv", tmp_path / "resumed.csv"
    command = [
        sys.executable,
        "-m",
        "triage.cli",
        "classify",
        str(source),
        "--registry",
        str(registry_root),
        "--jobs",
        "1",
        "--chunk-size",
        "16",
        "--quiet",
    ]
    subprocess.run([*command, "-o", str(reference)], check=True, timeout=300, capture_output=True)
    process = subprocess.Popen([*command, "-o", str(resumed)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        progress = progress_path(resumed)
        if progress.is_file() and json.loads(progress.read_text() or "{}").get("rows", 0) >= 200:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert progress_path(resumed).is_file(), "the run finished before it could be interrupted"
    partial_rows = len(read_csv(resumed))
    assert 0 < partial_rows < len(rows)
    with resumed.open("ab") as handle:  # a half-written record, as a kill mid-write leaves
        handle.write(b"B9999,oth")
    subprocess.run([*command, "-o", str(resumed), "--resume"], check=True, timeout=300, capture_output=True)
    assert resumed.read_bytes() == reference.read_bytes()
    assert not progress_path(resumed).exists()


def test_enqueue_feeds_the_routing_queue_once_per_id(
    registry_root: Path, backlog: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from store import QueueStore

    database = f"sqlite:///{tmp_path / 'queue.db'}"
    monkeypatch.setenv("TRIAGE_DATABASE_URL", database)
    rows = [*backlog[:30], ("", "没有编号的一行", "housing")]
    source = write_csv(tmp_path / "in.csv", rows)
    args = [str(source), "-o", str(tmp_path / "out.csv"), "-j", "1", "--enqueue"]
    code, output = classify(registry_root, *args)
    assert code == 0, output
    assert "new 30, already queued 0, conflicts 0" in output
    code, output = classify(registry_root, *args)
    assert code == 0 and "new 0, already queued 30, conflicts 0" in output
    store = QueueStore(database)
    assert all(store.find(external_id=row[0]) is not None for row in backlog[:30])
    changed = write_csv(tmp_path / "changed.csv", [(backlog[0][0], "完全不同的另一件事：路灯坏了", "")])
    code, output = classify(registry_root, str(changed), "-o", str(tmp_path / "o2.csv"), "-j", "1", "--enqueue")
    assert code == 0 and "conflicts 1" in output


def test_backlog_rows_lose_nul_before_anything_stores_them() -> None:
    """PostgreSQL refuses NUL in text: a backlog row carrying one must still be classified and queued."""
    options = ClassifyOptions(contact_col="contact")
    item = validate(Row(2, {"id": "A\x001", "text": "物业\x00乱收费，电梯坏了", "contact": "1381234\x005678"}), options)
    assert (item.id, item.text, item.contact, item.error) == ("A1", "物业乱收费，电梯坏了", "13812345678", None)
    only_nul = validate(Row(3, {"id": "A2", "text": "\x00\x00"}), options)
    assert only_nul.text is None and only_nul.error is not None and only_nul.error.startswith("empty_text")
