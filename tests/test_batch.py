"""Backlog re-classification: encodings, bad rows, order with several jobs, resume after a kill or Ctrl-C, compare,
files that must not be overwritten, resumes that must not mix runs."""

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

from batch.classify import ClassifyOptions, classify_file, progress_path, validate
from batch.writers import OUTPUT_FIELDS
from training.dataset import Columns, load_corpus, load_labelled
from training.io import Row
from training.train import TrainResult
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


def classify_command(source: Path, registry_root: Path, jobs: int) -> list[str]:
    """`triage classify` in its own process, in small chunks so that a run can be stopped half-way."""
    return [
        sys.executable,
        "-m",
        "triage.cli",
        "classify",
        str(source),
        "--registry",
        str(registry_root),
        "--jobs",
        str(jobs),
        "--chunk-size",
        "16",
        "--quiet",
    ]


def wait_for_progress(output: Path, rows: int, process: subprocess.Popen[bytes]) -> None:
    """Until the run's progress file counts `rows` written rows (or the run ends, or two minutes pass)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        progress = progress_path(output)
        if progress.is_file() and json.loads(progress.read_text() or "{}").get("rows", 0) >= rows:
            return
        time.sleep(0.02)


def test_resume_after_kill_matches_an_uninterrupted_run(registry_root: Path, backlog: list, tmp_path: Path) -> None:
    rows = [(f"{i}-{j}", text, dep) for j in range(4) for i, text, dep in backlog]
    source = write_csv(tmp_path / "in.csv", rows)
    reference, resumed = tmp_path / "reference.csv", tmp_path / "resumed.csv"
    command = classify_command(source, registry_root, jobs=1)
    subprocess.run([*command, "-o", str(reference)], check=True, timeout=300, capture_output=True)
    process = subprocess.Popen([*command, "-o", str(resumed)], stderr=subprocess.DEVNULL)
    wait_for_progress(resumed, 200, process)
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


# -- files that must not be overwritten, resumes that must not mix runs ----------------------------------------


class Stop(Exception):
    """Ends a run in its second chunk, as a crash would."""


def interrupted_run(source: Path, output: Path, folder: Path, errors: Path | None = None) -> None:
    """Leave `output` (and `errors`) as a run that crashed in its second chunk of 8 rows leaves them."""
    chunks: list[int] = []

    def stop(results: list) -> None:
        chunks.append(len(results))
        if len(chunks) == 2:
            raise Stop

    with pytest.raises(Stop):
        classify_file(source, output, folder, ClassifyOptions(chunk_size=8, jobs=1), on_results=stop, errors=errors)
    assert progress_path(output).is_file()


def test_an_output_or_errors_file_that_is_the_input_is_refused(
    registry_root: Path, backlog: list, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "in.csv", backlog[:20])
    original = source.read_bytes()
    os.link(source, tmp_path / "linked.csv")
    for args in (
        ["-o", str(source)],
        ["-o", str(tmp_path / "sub" / ".." / "in.csv")],
        ["-o", str(tmp_path / "linked.csv")],
        ["-o", str(tmp_path / "out.csv"), "--errors", str(source)],
    ):
        (tmp_path / "sub").mkdir(exist_ok=True)
        code, output = classify(registry_root, str(source), *args, "-j", "1")
        assert code != 0 and "is the input file" in output and "就是输入文件" in output, args
        assert source.read_bytes() == original
    code, output = classify(
        registry_root, str(source), "-o", str(tmp_path / "out.csv"), "--errors", f"{tmp_path}/./out.csv"
    )
    assert code != 0 and "same file" in output
    assert not (tmp_path / "out.csv").exists()


def test_an_interrupted_output_is_kept_unless_resumed(
    registry_root: Path, trained: TrainResult, backlog: list, tmp_path: Path
) -> None:
    source, out = write_csv(tmp_path / "in.csv", backlog[:40]), tmp_path / "out.csv"
    interrupted_run(source, out, trained.folder)
    partial, progress = out.read_bytes(), progress_path(out).read_bytes()
    code, output = classify(registry_root, str(source), "-o", str(out), "-j", "1")
    assert code != 0 and "--resume" in output and "delete" in output and "删除" in output
    assert out.read_bytes() == partial and progress_path(out).read_bytes() == progress
    code, output = classify(registry_root, str(source), "-o", str(out), "-j", "1", "--resume")
    assert code == 0, output
    assert len(read_csv(out)) == 40 and not progress_path(out).exists()


def test_resume_refuses_another_input_or_other_options(
    registry_root: Path, trained: TrainResult, backlog: list, tmp_path: Path
) -> None:
    source, out = write_csv(tmp_path / "in.csv", backlog[:40]), tmp_path / "out.csv"
    other = write_csv(tmp_path / "other.csv", backlog[40:80])
    interrupted_run(source, out, trained.folder)
    partial = out.read_bytes()
    refusals = {
        "input file": [str(other), "-o", str(out)],
        "--compare-col": [str(source), "-o", str(out), "--compare-col", "old"],
        "--errors": [str(source), "-o", str(out), "--errors", str(tmp_path / "errors.csv")],
    }
    for expected, args in refusals.items():
        code, output = classify(registry_root, *args, "-j", "1", "--resume")
        assert code != 0 and "different run" in output and expected in output, output
        assert out.read_bytes() == partial
    source.write_bytes(source.read_bytes() + b"X1,\xe8\xb7\xaf\xe7\x81\xaf\xe5\x9d\x8f\xe4\xba\x86,\r\n")  # grown
    code, output = classify(registry_root, str(source), "-o", str(out), "-j", "1", "--resume")
    assert code != 0 and "input size" in output
    # A progress file of an older version records no run: refused, since nothing proves it is the same one.
    record = json.loads(progress_path(out).read_text(encoding="utf-8"))
    progress_path(out).write_text(json.dumps({"rows": record["rows"], "offset": record["offset"]}), encoding="utf-8")
    code, output = classify(registry_root, str(source), "-o", str(out), "-j", "1", "--resume")
    assert code != 0 and "older version" in output and out.read_bytes() == partial


def test_resume_appends_to_the_errors_file(
    registry_root: Path, trained: TrainResult, backlog: list, tmp_path: Path
) -> None:
    rows = [
        (identifier, "" if index % 5 == 0 else text, dep) for index, (identifier, text, dep) in enumerate(backlog[:40])
    ]
    source = write_csv(tmp_path / "in.csv", rows)
    out, errors = tmp_path / "out.csv", tmp_path / "errors.csv"
    reference, reference_errors = tmp_path / "reference.csv", tmp_path / "reference-errors.csv"
    code, output = classify(
        registry_root, str(source), "-o", str(reference), "--errors", str(reference_errors), "-j", "1"
    )
    assert code == 0, output
    interrupted_run(source, out, trained.folder, errors)
    assert 2 <= len(read_csv(errors)) < 8
    with errors.open("ab") as handle:  # a half-written error row, as a kill mid-write leaves
        handle.write(b"99,B9")
    code, output = classify(registry_root, str(source), "-o", str(out), "--errors", str(errors), "-j", "1", "--resume")
    assert code == 0, output
    assert len(read_csv(errors)) == 8
    assert errors.read_bytes() == reference_errors.read_bytes() and out.read_bytes() == reference.read_bytes()


def test_a_row_with_more_fields_than_the_header_is_an_error_not_half_a_text(
    registry_root: Path, tmp_path: Path
) -> None:
    text = "我家小区物业费一年涨了两次，业委会也不管，要求住建部门查处"
    source = tmp_path / "in.csv"
    source.write_text(
        f"id,text,old\r\n1,{text},housing\r\n2,物业费涨了,业委会不管,housing\r\n3,{text},housing,\r\n", encoding="utf-8"
    )
    out, errors = tmp_path / "out.csv", tmp_path / "errors.csv"
    code, output = classify(
        registry_root, str(source), "-o", str(out), "--errors", str(errors), "--compare-col", "old", "-j", "1"
    )
    assert code == 0, output
    rows = read_csv(out)
    assert [row["error"].split(":")[0] for row in rows] == ["", "extra_fields", ""]  # a trailing empty field is fine
    assert rows[1]["domain"] == "" and "more fields than the header" in rows[1]["error"]
    assert rows[0]["department"] == rows[2]["department"] == "housing"
    assert [row["row"] for row in read_csv(errors)] == ["3"]
    # Training and evaluation read the same rows: the row is reported as invalid, never learned from in part.
    labelled = tmp_path / "labelled.csv"
    labelled.write_text(f"text,domain\r\n{text},real_estate\r\n物业费涨了,业委会不管,real_estate\r\n", encoding="utf-8")
    data = load_labelled([labelled], Columns(department=None))
    assert data.texts == [text] and [row.number for row in data.invalid] == [3]
    assert "more fields than the header" in data.invalid[0].reason


def test_ctrl_c_with_several_jobs_stops_promptly_and_resumes_exactly(
    registry_root: Path, backlog: list, tmp_path: Path
) -> None:
    rows = [(f"{i}-{j}", text, dep) for j in range(4) for i, text, dep in backlog]
    source = write_csv(tmp_path / "in.csv", rows)
    reference, resumed = tmp_path / "reference.csv", tmp_path / "resumed.csv"
    command = classify_command(source, registry_root, jobs=2)
    subprocess.run([*command, "-o", str(reference)], check=True, timeout=300, capture_output=True)
    # Its own process group, as a terminal's Ctrl-C reaches the command and its workers alike.
    process = subprocess.Popen([*command, "-o", str(resumed)], stderr=subprocess.PIPE, start_new_session=True)
    wait_for_progress(resumed, 64, process)
    os.killpg(process.pid, signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("classify --jobs 2 did not stop within 30 s of Ctrl-C")
    assert process.returncode == 130, stderr.decode()
    assert "--resume" in stderr.decode() and "已中断" in stderr.decode()
    assert progress_path(resumed).is_file(), "the run finished before it could be interrupted"
    assert 0 < len(read_csv(resumed)) < len(rows)
    gone = time.monotonic() + 10  # the workers end with the command
    while time.monotonic() < gone:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("worker processes outlived the interrupted command")
    subprocess.run([*command, "-o", str(resumed), "--resume"], check=True, timeout=300, capture_output=True)
    assert resumed.read_bytes() == reference.read_bytes()
    assert not progress_path(resumed).exists()
