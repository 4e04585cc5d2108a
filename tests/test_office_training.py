"""Training on an office's own history mixed with the corpus; safe promotion; evaluation on own files."""

from __future__ import annotations

import copy
import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from model.persistence import read_manifest
from model.registry import Registry
from model.taxonomy import load_taxonomy
from training.dataset import LabelledData, load_corpus, row_key
from training.labels import load_label_map, rare_rows, shares_taxonomy, unknown_labels
from training.mixing import merge_feedback, mix
from training.promotion import Comparison, check_promotion
from training.train import TrainResult, split_holdout
from triage.cli import app

runner = CliRunner()
OFFICE_NAMES = {"housing": "住建局", "human_resources": "人社局", "education": "教育局", "transport": "交通局"}


def rows(*labelled: tuple[str, str, str]) -> LabelledData:
    return LabelledData(
        texts=[text for text, _, _ in labelled],
        labels=[domain for _, domain, _ in labelled],
        departments=[department for _, _, department in labelled],
        splits=["train"] * len(labelled),
    )


def test_label_map_maps_office_names_per_head(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("原名称,编号,head\n住建局,housing,\n教育,education,domain\n", encoding="utf-8")
    mapping = load_label_map(path)
    data = mapping.apply(rows(("甲", "教育", "住建局"), ("乙", "other", "信访局")))
    assert data.labels == ["education", "other"] and data.departments == ["housing", "信访局"]
    assert unknown_labels(data, load_taxonomy()) == {"department": ["信访局"]}
    assert shares_taxonomy(data, load_taxonomy())
    assert not shares_taxonomy(rows(("甲", "教育", "住建局")), load_taxonomy())


def test_rare_labels_are_set_aside_unless_the_corpus_has_them() -> None:
    data = rows(*[(f"t{i}", "other", "general") for i in range(6)], ("x", "other", "信访局"), ("y", "other", "health"))
    keep, rare = rare_rows(data)
    assert keep == list(range(6)) and {(item.label, item.rows) for item in rare} == {("信访局", 1), ("health", 1)}
    keep, rare = rare_rows(data, {"department": ["health"] * 10, "domain": []})
    assert keep == [*range(6), 7] and [item.label for item in rare] == ["信访局"]


def test_holdout_split_survives_labels_seen_once() -> None:
    data = rows(*[(f"t{i}", "other", "general" if i % 2 else "health") for i in range(20)], ("x", "other", "信访局"))
    train, test = split_holdout(data, 0.2)
    assert len(test) == 4 and "x" in train.texts


def test_feedback_final_label_wins_and_replaces_the_office_row() -> None:
    office = rows(("物业费乱收 电话13812345678", "real_estate", "market_regulation"), ("路灯坏了", "other", "general"))
    feedback = rows(
        ("物业费乱收 电话【电话】", "real_estate", "general"),
        ("路灯坏了", "other", "urban_management"),
        ("物业费乱收 电话【电话】", "real_estate", "housing"),
    )
    merged, counts = merge_feedback(office, feedback)
    assert sorted(zip(merged.texts, merged.departments or [], strict=True)) == [
        ("物业费乱收 电话【电话】", "housing"),
        ("路灯坏了", "urban_management"),
    ]
    assert (counts.added, counts.replaced_office_rows, counts.repeated_decisions) == (2, 2, 1)
    assert row_key("物业费乱收 电话13812345678") == row_key("物业费乱收 电话【电话】")


def test_mix_weights_office_rows_and_chooses_thresholds_on_them_only() -> None:
    fitted = mix(rows(("a", "other", "general")), rows(("b", "other", "health"), ("c", "other", "health")), 4.0)
    assert fitted.texts == ["a", "b", "c"] and fitted.sample_weight.tolist() == [1.0, 4.0, 4.0]
    assert fitted.threshold_rows.tolist() == [False, True, True]


def test_promotion_refuses_unroutable_and_headless_models(trained: TrainResult) -> None:
    taxonomy = load_taxonomy()
    manifest = copy.deepcopy(trained.manifest)
    assert check_promotion(manifest, manifest.version, taxonomy).problems == []
    manifest.labels = {"domain": ["a", "b"]}
    assert "no department head" in check_promotion(manifest, "other", taxonomy).problems[0]
    manifest.labels = {"domain": ["other"], "department": ["housing", "信访局"]}
    assert "信访局" in check_promotion(manifest, "other", taxonomy).problems[0]


def office_file(path: Path) -> Path:
    """Corpus rows relabelled with office names, two text columns, and a department seen twice."""
    corpus = load_corpus()
    counts: dict[str, int] = {}
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["标题", "内容", "领域", "部门"])
        for text, domain, department in zip(corpus.texts, corpus.labels, corpus.departments or [], strict=True):
            if department in OFFICE_NAMES and counts.get(department, 0) < 25:
                counts[department] = counts.get(department, 0) + 1
                writer.writerow([text[:12], text[12:], domain, OFFICE_NAMES[department]])
        writer.writerow(["来信转办", "要求信访局督办一件旧案的答复情况。", "other", "信访局"])
        writer.writerow(["来信转办", "信访局转来的件，请尽快答复当事人的诉求。", "other", "信访局"])
    return path


@pytest.mark.slow
def test_office_training_mixes_the_corpus_compares_and_promotes_safely(
    trained: TrainResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus.jsonl"
    lines = Path(load_corpus().sources[0]).read_text(encoding="utf-8").splitlines()
    corpus.write_text("\n".join(lines[::6]) + "\n", encoding="utf-8")  # a sixth of the corpus keeps it fast
    monkeypatch.setenv("TRIAGE_CORPUS", str(corpus))
    registry = tmp_path / "models"
    shutil.copytree(trained.folder, registry / trained.version)
    Registry(registry).promote(trained.version)
    data = office_file(tmp_path / "history.csv")
    label_map = tmp_path / "map.csv"
    label_map.write_text("名称,编号\n" + "".join(f"{v},{k}\n" for k, v in OFFICE_NAMES.items()), encoding="utf-8")
    args = ["--data", str(data), "--text-col", "标题", "--text-col", "内容", "--label-col", "领域"]
    args += ["--department-col", "部门", "--registry", str(registry)]
    result = runner.invoke(app, ["train", *args, "--label-map", str(label_map)])
    assert result.exit_code == 0, result.output
    assert "信访局" in result.output and "manual triage" in result.output  # unknown label warned about
    assert "set aside" in result.output  # two rows of 信访局: trained without it, never aborted
    assert "new vs current" in result.output and trained.version in result.output
    version = Registry(registry).versions()[-1]
    manifest = read_manifest(registry / version)
    facts = manifest.training_data
    assert facts["corpus_rows"] == len(lines[::6]) and facts["office_weight"] == 1.0
    assert facts["set_aside_labels"] == [{"head": "department", "label": "信访局", "rows": 2}]
    assert "信访局" not in manifest.labels["department"] and "housing" in manifest.labels["department"]
    assert "finance_regulation" in manifest.labels["department"]  # the corpus keeps what the office never sees
    comparison = Comparison.from_dict(manifest.metrics["comparison"])
    assert comparison.against == trained.version and comparison.new is not None and comparison.rows > 0
    # Each change carries its paired interval, which holds the change itself, in the manifest and the table.
    top1 = comparison.changes["department_top1"]
    assert comparison.current is not None and comparison.new.department_top1 is not None
    change = comparison.new.department_top1 - (comparison.current.department_top1 or 0.0)
    assert top1.low <= change <= top1.high
    assert f"{change:+.3f} {top1.signed()}" in result.output
    assert "Comparison with the current model" in (registry / version / "report.md").read_text(encoding="utf-8")
    assert Registry(registry).current() == trained.version

    unmapped = runner.invoke(app, ["train", *args, "--holdout", "0.3"])
    assert unmapped.exit_code == 0, unmapped.output
    assert "own-label model" in unmapped.output
    own = Registry(registry).versions()[-1]
    refused = runner.invoke(app, ["promote", own, "--registry", str(registry)])
    assert refused.exit_code == 1 and "住建局" in refused.output and "--force" in refused.output
    assert Registry(registry).current() == trained.version
    forced = runner.invoke(app, ["promote", own, "--force", "--registry", str(registry)])
    assert forced.exit_code == 0 and Registry(registry).current() == own

    evaluation = ["evaluate", "--data", str(data), "--text-col", "标题", "--text-col", "内容", "--label-col", "领域"]
    evaluation += ["--department-col", "部门", "--registry", str(registry), "--output", str(tmp_path / "r")]
    own_file = runner.invoke(app, evaluation)  # the model's own training file, split at random
    assert own_file.exit_code == 0, own_file.output
    assert "training data" in own_file.output and (tmp_path / "r" / "report.md").is_file()
    # The held-out rows' routing figures come with bootstrap intervals, in the terminal and in the report.
    line = next(line for line in own_file.output.splitlines() if "department top-1:" in line)
    value, low, high = (float(x) for x in re.findall(r"\d\.\d{3}", line))
    assert low <= value <= high and low < high
    department = next(line for line in own_file.output.splitlines() if line.startswith("department: accuracy"))
    assert f"accuracy {value:.3f}" in department  # the same top-1 as the head's own line
    assert "department top-1:" in (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    strangers = tmp_path / "strangers.csv"
    strangers.write_text("text,domain,department\n路灯坏了,其他,城管\n噪音扰民,其他,环保\n", encoding="utf-8")
    unknown = runner.invoke(
        app, ["evaluate", "--data", str(strangers), "--version", version, "--registry", str(registry)]
    )
    assert unknown.exit_code == 1 and "none of the file's" in unknown.output and "0.000" not in unknown.output
    assert json.loads((registry / version / "manifest.json").read_text(encoding="utf-8"))["version"] == version
