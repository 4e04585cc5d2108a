"""Hardening of the `triage` inputs (issue 12, item 7): broken CSV, outputs, progress files, encodings,
formula cells, training data that cannot train. Each ended in a traceback, a silent merge or an
English-only scikit-learn message before its fix."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from tests.test_batch import classify, read_csv, write_csv
from triage.cli import app

runner = CliRunner()
GOOD = "我家小区物业费一年涨了两次，业委会也不管，要求住建部门查处"


# -- 7. inputs and outputs that used to end in a traceback or a silent wrong answer --------------------


def test_unclosed_quote_stops_with_the_record_number(registry_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "quote.csv"
    source.write_text(f'id,text\n1,{GOOD}\n2,"{GOOD}\n3,{GOOD}\n', encoding="utf-8")
    code, output = classify(registry_root, str(source), "-o", str(tmp_path / "out.csv"), "-j", "1")
    assert code != 0
    assert "引号" in output and "unclosed quote" in output and "3" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("where", ["directory", "missing-folder"])
def test_output_to_a_directory_or_a_missing_folder_is_a_clear_error(
    registry_root: Path, tmp_path: Path, where: str
) -> None:
    source = write_csv(tmp_path / "in.csv", [("1", GOOD, "")])
    target = tmp_path if where == "directory" else tmp_path / "no" / "such" / "out.csv"
    for option in ("-o", "--errors"):
        args = [option, str(target)] if option == "-o" else ["-o", str(tmp_path / "ok.csv"), option, str(target)]
        code, output = classify(registry_root, str(source), *args, "-j", "1")
        assert code != 0 and "Traceback" not in output, output
        assert ("目录" in output) and ("directory" in output or "folder" in output), output


def test_corrupt_progress_file_is_a_clear_error(registry_root: Path, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [("1", GOOD, "")])
    out = tmp_path / "out.csv"
    out.write_text("id\n", encoding="utf-8")
    for content in ("{not json", '{"rows": "x"}', "[]", '{"rows": 5, "offset": -3}'):
        (tmp_path / "out.csv.progress").write_text(content, encoding="utf-8")
        code, output = classify(registry_root, str(source), "-o", str(out), "--resume", "-j", "1")
        assert code != 0 and "Traceback" not in output
        assert "进度文件" in output and "progress file" in output, output


def test_gbk_file_with_one_bad_byte_is_read_with_a_warning(registry_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "gbk.csv"
    source.write_bytes(
        "id,text\r\n1,".encode("gbk") + GOOD.encode("gbk") + b"\r\n2," + GOOD.encode("gbk") + b"\xff\r\n"
    )
    out = tmp_path / "out.csv"
    code, output = classify(registry_root, str(source), "-o", str(out), "-j", "1")
    assert code == 0, output
    assert "警告" in output and "GB18030" in output
    rows = read_csv(out)
    assert [row["error"] for row in rows] == ["", ""] and all(row["domain"] for row in rows)


def test_directory_as_input_says_so(registry_root: Path, tmp_path: Path) -> None:
    (tmp_path / "backlog.csv").mkdir()
    code, output = classify(registry_root, str(tmp_path / "backlog.csv"))
    assert code != 0 and "是目录" in output and "is a directory" in output, output


def test_xlsx_formula_cells_without_cached_values_are_reported(registry_root: Path, tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["id", "text"])
    sheet.append(["1", GOOD])
    sheet.append(["2", '=CONCATENATE("物业","不作为")'])  # openpyxl saves formulas without cached values
    source = tmp_path / "in.xlsx"
    workbook.save(source)
    out = tmp_path / "out.csv"
    code, output = classify(registry_root, str(source), "-o", str(out), "-j", "1")
    assert code == 0, output
    rows = read_csv(out)
    assert rows[0]["error"] == "" and rows[1]["error"].startswith("formula_without_value")


def train(tmp_path: Path, rows: list[tuple[str, str]], *options: str) -> tuple[int, str]:
    data = tmp_path / "train.csv"
    with data.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "domain"])
        writer.writerows(rows)
    result = runner.invoke(app, ["train", "--data", str(data), "--registry", str(tmp_path / "models"), *options])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("rows", "options", "expected"),
    [
        ([(GOOD + str(i), "real_estate") for i in range(20)], (), "至少需要两个类别"),
        ([(GOOD, "real_estate"), (GOOD + "。", "education")], (), "每个类别至少需要"),
        ([(GOOD + str(i), ("real_estate", "education")[i % 2]) for i in range(40)], ("--holdout", "1.5"), "留出比例"),
        ([(GOOD + str(i), ("real_estate", "education")[i % 2]) for i in range(40)], ("--holdout", "0"), "留出比例"),
    ],
)
def test_untrainable_data_gives_a_bilingual_error(
    tmp_path: Path, rows: list[tuple[str, str]], options: tuple[str, ...], expected: str
) -> None:
    code, output = train(tmp_path, rows, *options)
    assert code != 0 and expected in output, output
    message = output.split("error:", 1)[-1]
    assert any("a" <= char <= "z" for char in message), "the message has an English half"
    assert "Traceback" not in output
