"""`triage` commands as data staff use them: custom files, registry, evaluation, cross-validation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from model.registry import Registry
from training.dataset import load_corpus
from triage.cli import app

runner = CliRunner()


def seven_class_rows(per_class: int = 30) -> list[tuple[str, str]]:
    """Corpus texts relabelled with a 7-class scheme of Chinese names, as another office might use."""
    names = {
        "housing": "城乡建设",
        "human_resources": "劳动和社会保障",
        "education": "教育文体",
        "market_regulation": "商贸旅游",
        "health": "卫生计生",
        "ecology_environment": "环境保护",
        "transport": "交通运输",
    }
    corpus = load_corpus()
    counts: dict[str, int] = {}
    rows = []
    for text, department in zip(corpus.texts, corpus.departments or [], strict=True):
        if department in names and counts.get(department, 0) < per_class:
            counts[department] = counts.get(department, 0) + 1
            rows.append((text, names[department]))
    return rows


def write_csv(path: Path, header: list[str], rows: list[tuple], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_train_on_a_gbk_csv_with_another_label_scheme_and_one_head(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "history.csv", ["内容", "类别"], seven_class_rows(), encoding="gbk")
    registry = tmp_path / "models"
    result = runner.invoke(
        app, ["train", "--data", str(data), "--text-col", "内容", "--label-col", "类别", "--registry", str(registry)]
    )
    assert result.exit_code == 0, result.output
    manifest = Registry(registry).manifests()[0]
    assert len(manifest.labels["domain"]) == 7 and "department" not in manifest.labels
    assert "交通运输" in manifest.labels["domain"]
    assert manifest.training_data["test_rows"] > 0 and Registry(registry).current() == manifest.version


def test_invalid_rows_are_reported_with_row_numbers_and_can_be_skipped(tmp_path: Path) -> None:
    rows = seven_class_rows()
    rows.insert(3, ("   ", "教育文体"))
    rows.insert(7, ("孩子学校乱收费", ""))
    data = write_csv(tmp_path / "bad.csv", ["text", "label"], rows)
    args = ["train", "--data", str(data), "--label-col", "label", "--registry", str(tmp_path / "m")]
    stopped = runner.invoke(app, args)
    assert stopped.exit_code != 0
    assert "row 5" in stopped.output and "row 9" in stopped.output and "--skip-invalid" in stopped.output
    skipped = runner.invoke(app, [*args, "--skip-invalid"])
    assert skipped.exit_code == 0, skipped.output
    assert Registry(tmp_path / "m").manifests()[0].training_data["skipped_invalid_rows"] == 2


def test_train_reads_excel_and_reports_unknown_columns(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["text", "label"])
    for text, label in seven_class_rows(12):
        sheet.append([text, label])
    workbook.save(tmp_path / "history.xlsx")
    ok = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(tmp_path / "history.xlsx"),
            "--label-col",
            "label",
            "--registry",
            str(tmp_path / "m"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    missing = runner.invoke(app, ["train", "--data", str(tmp_path / "history.xlsx"), "--label-col", "类别"])
    assert missing.exit_code != 0 and "类别" in missing.output


def test_models_and_promote_keep_the_previous_version_for_rollback(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "h.csv", ["text", "label"], seven_class_rows(10))
    registry = tmp_path / "models"
    for _ in range(2):
        assert (
            runner.invoke(
                app, ["train", "--data", str(data), "--label-col", "label", "--registry", str(registry)]
            ).exit_code
            == 0
        )
    first, second = Registry(registry).versions()
    assert Registry(registry).current() == first
    refused = runner.invoke(app, ["promote", second, "--registry", str(registry)])
    assert refused.exit_code == 1 and "no department head" in refused.output
    assert runner.invoke(app, ["promote", second, "--force", "--registry", str(registry)]).exit_code == 0
    listing = runner.invoke(app, ["models", "--registry", str(registry)])
    assert f"* {second}" in listing.output and f"  {first}" in listing.output
    unknown = runner.invoke(app, ["promote", "nope", "--registry", str(registry)])
    assert unknown.exit_code != 0 and "nope" in unknown.output


def test_evaluate_writes_a_report_on_the_held_out_split(registry_root: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--registry", str(registry_root), "--output", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    report = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "macro-F1" in report and "住房和城乡建设局" in report
    for name in ("confusion_domain.png", "reliability_domain.png", "confusion_department.png"):
        assert (tmp_path / "r" / name).read_bytes().startswith(b"\x89PNG")
    assert "corpus test split" in result.output


def test_cv_prints_fold_averaged_metrics(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "h.csv", ["text", "label"], seven_class_rows(15))
    result = runner.invoke(app, ["cv", "--data", str(data), "--label-col", "label", "--folds", "3"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout[result.stdout.index("{") :])
    assert payload["folds"] == 3 and 0 < payload["heads"]["domain"]["macro_f1"]["mean"] <= 1


def test_commands_without_a_model_fail_clearly(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "in.csv", ["id", "text"], [("1", "物业乱收费")])
    result = runner.invoke(app, ["classify", str(data), "--registry", str(tmp_path / "empty")])
    assert result.exit_code != 0 and "triage train" in result.output


@pytest.mark.parametrize("command", ["train", "evaluate", "cv", "classify", "models", "promote", "serve"])
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "/" in result.output


def test_a_model_refuses_to_run_with_the_other_segmenter(
    registry_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained_with = Registry(registry_root).manifests()[0].segmenter
    other = "rjieba" if trained_with == "jieba" else "jieba"
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,开发商逾期交房\n", encoding="utf-8")
    monkeypatch.setenv("TRIAGE_SEGMENTER", other)
    result = runner.invoke(
        app, ["classify", str(source), "-o", str(tmp_path / "out.csv"), "--registry", str(registry_root)]
    )
    assert result.exit_code == 2
    assert f"trained with the {trained_with} segmenter and refuses to run with {other}" in result.output
    assert not (tmp_path / "out.csv").exists()
    monkeypatch.setenv("TRIAGE_SEGMENTER", trained_with)
    result = runner.invoke(
        app, ["classify", str(source), "-o", str(tmp_path / "out.csv"), "--registry", str(registry_root)]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", "--segmenter", "thulac", "--registry", str(tmp_path / "r")])
    assert result.exit_code == 2 and "unknown segmenter" in result.output
