"""`triage feedback export` and `triage train --feedback` through the CLI entry, on a real SQLite store
and real files: clerks' decisions leave the service masked, one row per petition (the final label
wins), and a later training run relabels the office's own row with them."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from model.persistence import read_manifest
from model.registry import Registry
from store import QueueStore
from tests.test_queue import T0, prediction, submission
from training.dataset import load_corpus
from triage.cli import app

runner = CliRunner()
PHONE = "13812345678"


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def decide(store: QueueStore, petition_id: int, department: str, days: int, domain: str | None = None) -> None:
    store.route(petition_id, department, domain=domain, actor="clerk-1", role="clerk", now=T0 + timedelta(days=days))


def test_feedback_export_writes_one_masked_row_per_petition(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    store = QueueStore(url)
    unsure = prediction(confident=False)
    accepted = store.submit(submission(f"物业乱收费，电话{PHONE}", prediction=unsure)).petition_id
    moved = store.submit(submission("=路灯不亮，晚上出行不安全", prediction=unsure)).petition_id
    auto = store.submit(submission("小区停车难")).petition_id
    decide(store, accepted, "housing", 1)
    decide(store, moved, "urban_management", 1, domain="other")
    decide(store, moved, "transport", 10, domain="other")  # re-routed later: this label wins
    decide(store, auto, "public_security", 12, domain="other")
    store.dispose()
    env = {"TRIAGE_DATABASE_URL": url}

    output = tmp_path / "corrections.csv"
    result = runner.invoke(app, ["feedback", "export", "-o", str(output)], env=env)
    assert result.exit_code == 0, result.output
    assert "exported 3 rows (accepted 1, rerouted 2)" in result.output
    assert f"triage train --feedback {output}" in result.output
    rows = read_rows(output)
    assert [(row["petition_id"], row["department"], row["decision"]) for row in rows] == [
        (str(accepted), "housing", "accepted"),
        (str(moved), "transport", "rerouted"),
        (str(auto), "public_security", "rerouted"),
    ]
    assert PHONE not in output.read_text(encoding="utf-8-sig") and "【电话】" in rows[0]["text"]
    assert rows[1]["text"].startswith("'=")  # formula-safe: a spreadsheet shows it as text
    assert (rows[2]["suggested_department"], rows[2]["auto_routed"]) == ("housing", "yes")

    every = tmp_path / "all.csv"
    assert runner.invoke(app, ["feedback", "export", "-o", str(every), "--all-decisions"], env=env).exit_code == 0
    assert [row["decision"] for row in read_rows(every)] == ["accepted", "corrected", "rerouted", "rerouted"]
    since = (T0 + timedelta(days=5)).date().isoformat()
    recent = tmp_path / "recent.csv"
    assert runner.invoke(app, ["feedback", "export", "-o", str(recent), "--since", since], env=env).exit_code == 0
    assert [row["department"] for row in read_rows(recent)] == ["transport", "public_security"]

    unwritable = runner.invoke(app, ["feedback", "export", "-o", str(tmp_path / "no" / "such.csv")], env=env)
    assert unwritable.exit_code == 2 and "cannot write" in unwritable.output


@pytest.mark.parametrize("weight", ["0", "-2", "abc", "inf"])
def test_office_weight_must_be_positive_or_auto(tmp_path: Path, weight: str) -> None:
    data = tmp_path / "office.csv"
    data.write_text("text,label\n甲,other\n", encoding="utf-8")
    result = runner.invoke(app, ["train", "--data", str(data), "--office-weight", weight])
    assert result.exit_code == 2 and "--office-weight must be a positive number or auto" in result.output


def office_file(path: Path, per_department: int = 25) -> list[tuple[str, str, str]]:
    """Corpus rows of four departments, with taxonomy ids, as an office's routed history."""
    corpus = load_corpus()
    counts: dict[str, int] = {}
    rows = []
    for text, domain, department in zip(corpus.texts, corpus.labels, corpus.departments or [], strict=True):
        if department in {"housing", "human_resources", "education", "transport"} and (
            counts.get(department, 0) < per_department
        ):
            counts[department] = counts.get(department, 0) + 1
            rows.append((text, domain, department))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["内容", "领域", "部门"])
        writer.writerows(rows)
    return rows


@pytest.mark.slow
def test_train_with_exported_feedback_relabels_the_office_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus.jsonl"
    lines = Path(load_corpus().sources[0]).read_text(encoding="utf-8").splitlines()
    corpus.write_text("\n".join(lines[::6]) + "\n", encoding="utf-8")  # a sixth of the corpus keeps it fast
    monkeypatch.setenv("TRIAGE_CORPUS", str(corpus))
    history = office_file(tmp_path / "history.csv")
    # The service saw one of the office's texts, suggested its department, and a clerk sent it to another;
    # and one new petition was accepted as suggested.
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    store = QueueStore(url)
    text, _, department = history[0]
    relabelled = store.submit(submission(text, prediction=prediction("real_estate", department))).petition_id
    decide(store, relabelled, "urban_management", 1, domain="other")
    added = store.submit(submission(f"小区电梯坏了半年，物业不修，电话{PHONE}", prediction=prediction())).petition_id
    decide(store, added, "housing", 2)
    store.dispose()
    corrections = tmp_path / "corrections.csv"
    exported = runner.invoke(app, ["feedback", "export", "-o", str(corrections)], env={"TRIAGE_DATABASE_URL": url})
    assert exported.exit_code == 0, exported.output

    registry = tmp_path / "models"
    args = ["train", "--data", str(tmp_path / "history.csv"), "--text-col", "内容", "--label-col", "领域"]
    args += ["--department-col", "部门", "--feedback", str(corrections), "--registry", str(registry)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 rows used (1 new, 1 relabelling an office row)" in result.output
    assert "office weight 1 (指定 / given" in result.output  # no cross-validation unless --office-weight auto
    manifest = read_manifest(registry / Registry(registry).versions()[-1])
    facts = manifest.training_data
    assert facts["rows"] == len(history) + 1 and facts["office_weight"] == 1.0
    assert facts["corpus_rows"] == len(lines[::6]) and str(corrections) in facts["sources"]
    assert "urban_management" in manifest.labels["department"]
