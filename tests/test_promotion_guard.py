"""What keeps a bad or broken model from becoming current, and a wrong column from printing personal data.

Office files are small corpus extracts trained without the corpus (`--no-corpus`): seconds, not a minute.
"""

from __future__ import annotations

import csv
import dataclasses
import random
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from model.persistence import MANIFEST_FILE, MODEL_FILE, read_manifest
from model.registry import Registry
from model.taxonomy import load_taxonomy
from training.dataset import LabelledData, load_corpus
from training.promotion import COMPARISON_KEY, Comparison, check_promotion
from triage.cli import app

runner = CliRunner()
DEPARTMENTS = ("housing", "human_resources", "education", "market_regulation", "health", "transport")


def corpus_rows(per_department: int = 20) -> list[tuple[str, str, str]]:
    """(text, domain, department) of the first corpus rows of six departments."""
    corpus = load_corpus()
    counts: dict[str, int] = {}
    rows = []
    for text, domain, department in zip(corpus.texts, corpus.labels, corpus.departments or [], strict=True):
        if department in DEPARTMENTS and counts.get(department, 0) < per_department:
            counts[department] = counts.get(department, 0) + 1
            rows.append((text, domain, department))
    return rows


def write_rows(path: Path, header: list[str], rows: list[tuple[str, ...]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def train(data: Path, registry: Path, *extra: str) -> str:
    result = runner.invoke(app, ["train", "--data", str(data), "--no-corpus", "--registry", str(registry), *extra])
    assert result.exit_code == 0, result.output
    return Registry(registry).versions()[-1]


@pytest.fixture(scope="module")
def office_registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A registry whose current model learned a good office file on every row, and a model of the same
    texts with the department column shuffled (its comparison had no row the current model had not seen)."""
    folder = tmp_path_factory.mktemp("office")
    rows = corpus_rows()
    good = write_rows(folder / "good.csv", ["text", "domain", "department"], rows)
    departments = [department for _, _, department in rows]
    random.Random(1).shuffle(departments)
    shuffled = [(text, domain, department) for (text, domain, _), department in zip(rows, departments, strict=True)]
    bad = write_rows(folder / "shuffled.csv", ["text", "domain", "department"], shuffled)
    registry = folder / "models"
    first = train(good, registry)
    second = train(bad, registry)
    return registry, first, second


def copied(office_registry: tuple[Path, str, str], tmp_path: Path) -> Path:
    registry = tmp_path / "models"
    shutil.copytree(office_registry[0], registry)
    return registry


@pytest.mark.slow
def test_a_far_worse_model_is_refused_when_no_fair_comparison_was_possible(
    office_registry: tuple[Path, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRIAGE_SEGMENTER", raising=False)
    registry = copied(office_registry, tmp_path)
    _, first, second = office_registry
    manifest = read_manifest(registry / second)
    comparison = Comparison.from_dict(manifest.metrics[COMPARISON_KEY])
    # `first` learned every held-out row but those of a label it set aside as rare: no fair comparison.
    assert comparison.against == first and comparison.rows * 2 < manifest.training_data["test_rows"]
    refused = runner.invoke(app, ["promote", second, "--registry", str(registry)])
    assert refused.exit_code == 1, refused.output
    assert "far below the current model's recorded" in refused.output and "department" in refused.output
    assert Registry(registry).current() == first
    forced = runner.invoke(app, ["promote", second, "--force", "--registry", str(registry)])
    assert forced.exit_code == 0 and Registry(registry).current() == second


@pytest.mark.slow
def test_without_a_fair_comparison_recorded_figures_decide_or_force_is_needed(
    office_registry: tuple[Path, str, str],
) -> None:
    registry, first, second = office_registry
    taxonomy = load_taxonomy()
    current = read_manifest(registry / first)
    bad = read_manifest(registry / second)
    # The ordinary loop: retrained on the same file, as good as the current model's recorded figures.
    retrained = dataclasses.replace(bad, metrics={**bad.metrics, "test": current.metrics["test"]})
    check = check_promotion(retrained, first, taxonomy, current)
    assert check.problems == [] and "not compared on the same rows" in check.notes[0]
    assert check_promotion(bad, first, taxonomy, current).problems  # shuffled departments
    # The current model could not be loaded at training time and its manifest cannot be read now:
    # nothing to check against, so only --force promotes.
    comparison = Comparison.from_dict(bad.metrics[COMPARISON_KEY])
    unloadable = dataclasses.replace(comparison, current=None, note="当前模型无法加载 / current model: broken")
    retrained.metrics[COMPARISON_KEY] = unloadable.to_dict()
    unknown = check_promotion(retrained, first, taxonomy, None)
    assert "no fair comparison" in unknown.problems[0] and "current model: broken" in unknown.problems[0]
    assert check_promotion(retrained, first, taxonomy, current).problems == []


@pytest.mark.slow
def test_promote_refuses_a_damaged_model_file_or_another_segmenter_even_with_force(
    office_registry: tuple[Path, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRIAGE_SEGMENTER", raising=False)
    registry = copied(office_registry, tmp_path)
    _, first, second = office_registry
    model_file = registry / second / MODEL_FILE
    intact = model_file.read_bytes()
    model_file.write_bytes(intact[: len(intact) // 2])
    truncated = runner.invoke(app, ["promote", second, "--force", "--registry", str(registry)])
    assert truncated.exit_code == 2 and "sha256" in truncated.output and "not promoted" in truncated.output
    assert Registry(registry).current() == first
    model_file.write_bytes(intact)
    trained_with = read_manifest(registry / second).segmenter
    monkeypatch.setenv("TRIAGE_SEGMENTER", "rjieba" if trained_with == "jieba" else "jieba")
    other = runner.invoke(app, ["promote", second, "--force", "--registry", str(registry)])
    assert other.exit_code == 2 and f"trained with the {trained_with} segmenter" in other.output
    assert Registry(registry).current() == first
    monkeypatch.setenv("TRIAGE_SEGMENTER", trained_with)
    assert runner.invoke(app, ["promote", second, "--force", "--registry", str(registry)]).exit_code == 0


@pytest.mark.slow
def test_models_lists_a_version_with_an_unreadable_manifest_as_broken(
    office_registry: tuple[Path, str, str], tmp_path: Path
) -> None:
    registry = copied(office_registry, tmp_path)
    _, first, second = office_registry
    (registry / second / MANIFEST_FILE).write_text("{not json", encoding="utf-8")
    listing = runner.invoke(app, ["models", "--registry", str(registry)])
    assert listing.exit_code == 0, listing.output
    assert f"* {first}" in listing.output and f"  {second}  损坏 / broken" in listing.output


def people_rows(rows: int = 60) -> list[tuple[str, str, str]]:
    """Petitions with a name and a phone number per row, as an office export has them."""
    corpus = load_corpus()  # texts of other departments than the office files': no model here learned them
    pairs = zip(corpus.texts, corpus.departments or [], strict=True)
    texts = [text for text, department in pairs if department not in DEPARTMENTS][:rows]
    givens = ("伟", "芳", "秀英", "敏", "静", "建国")
    names = [surname + given for surname in "王李张刘陈杨黄赵吴周" for given in givens]
    return [(text, names[index], f"1381234{index:04d}") for index, text in enumerate(texts)]


def test_a_wrong_label_column_prints_counts_and_masked_labels_only(tmp_path: Path) -> None:
    data = write_rows(tmp_path / "people.csv", ["text", "姓名", "电话"], people_rows())
    columns = ["--label-col", "姓名", "--department-col", "电话"]
    result = runner.invoke(
        app, ["train", "--data", str(data), *columns, "--no-corpus", "--registry", str(tmp_path / "m")]
    )
    assert result.exit_code == 2, result.output
    for _, name, phone in people_rows():
        assert name not in result.output and phone not in result.output
    assert "王*" in result.output and "【电话】" in result.output  # a few, masked
    assert "label column is probably wrong" in result.output
    assert "120 labels were set aside for having fewer than 4 rows (department 60, domain 60)" in result.output
    assert not Registry(tmp_path / "m").versions()


def test_duplicate_texts_are_dropped_keeping_the_last_and_counting_conflicts() -> None:
    from training.train import without_duplicate_texts

    data = LabelledData(
        texts=["物业乱收费", "孩子学校乱收费", "物业乱收费 ", "工资拖欠"],
        labels=["a", "b", "c", "b"],
        departments=["x", "y", "x", "y"],
        splits=["train"] * 4,
    )
    kept, duplicates = without_duplicate_texts(data)
    assert kept.texts == ["孩子学校乱收费", "物业乱收费 ", "工资拖欠"] and kept.labels == ["b", "c", "b"]
    assert (duplicates.dropped, duplicates.conflicting) == (1, 1)
    unique = data.select([1, 2, 3])
    assert without_duplicate_texts(unique)[0] is unique  # data without duplicates (the corpus) is left as it is


@pytest.mark.slow
def test_repeated_rows_do_not_inflate_held_out_figures(tmp_path: Path) -> None:
    """Random labels, every row three times: without dropping copies each held-out row had its twin in training."""
    generator = random.Random(0)
    rows = [(text, generator.choice(DEPARTMENTS)) for text, _, _ in corpus_rows(14)]
    data = write_rows(tmp_path / "repeated.csv", ["text", "domain"], rows * 3)
    result = runner.invoke(
        app, ["train", "--data", str(data), "--no-corpus", "--department-col", "none", "--registry", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert f"{2 * len(rows)} rows repeating an earlier text dropped" in result.output
    manifest = Registry(tmp_path).manifests()[0]
    assert manifest.training_data["duplicate_rows_dropped"] == 2 * len(rows)
    assert manifest.training_data["rows"] == len(rows)
    assert manifest.metrics["test"]["domain"]["accuracy"] < 0.5  # chance is 1/6, not the 1.0 of seen copies


@pytest.mark.slow
def test_evaluate_with_a_wrong_label_column_names_a_few_masked_labels(
    office_registry: tuple[Path, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRIAGE_SEGMENTER", raising=False)
    data = write_rows(tmp_path / "people.csv", ["text", "姓名", "电话"], people_rows())
    columns = ["--label-col", "姓名", "--department-col", "电话"]
    result = runner.invoke(app, ["evaluate", "--data", str(data), *columns, "--registry", str(office_registry[0])])
    assert result.exit_code == 1, result.output
    for _, name, phone in people_rows():
        assert name not in result.output and phone not in result.output
    assert "(60: " in result.output and "+55 more" in result.output
