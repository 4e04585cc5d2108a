"""Dev-set figures recorded for the default configuration reach the manifest and card of a matching model only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.classifier import TriageModel
from model.registry import Registry
from training.dataset import load_corpus
from training.train import manifest_parameters, recorded_real_text_figures, train_and_register

PARAMS = {"calibration_folds": 2}


@pytest.fixture
def small_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    lines = (Path(__file__).resolve().parents[1] / "data" / "petitions.jsonl").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "petitions.jsonl"
    path.write_text("\n".join(lines[::16]) + "\n", encoding="utf-8")  # every class, about 400 rows
    monkeypatch.setenv("TRIAGE_CORPUS", str(path))
    return path


def record(path: Path, sha256: str, parameters: dict[str, object]) -> None:
    figures = {
        "rows": 1377,
        "domain_accuracy": 0.9,
        "domain_macro_f1": 0.7,
        "department_top1": 0.8,
        "department_top3": 0.94,
        "department_auto_coverage": 0.6,
        "department_auto_precision": 0.92,
        "domain_auto_coverage": 0.9,
        "domain_auto_precision": 0.96,
    }
    payload = {
        "model_version": "20261202-000000",
        "training_data_sha256": sha256,
        "parameters": parameters,
        "command": "benchmarks/real_data.py --record data/real_text_evaluation.json",
        "figures": {"all rows": figures},
        "as_the_service_routes": {
            "auto_coverage": 0.58,
            "auto_precision": 0.93,
            "intervals": {"department_top1": [0.78, 0.82]},
        },
    }
    path.with_name("real_text_evaluation.json").write_text(json.dumps(payload), encoding="utf-8")


def test_matching_record_is_quoted_and_a_stale_one_is_not(small_corpus: Path, tmp_path: Path) -> None:
    data = load_corpus()
    parameters = manifest_parameters(TriageModel(**PARAMS))
    record(small_corpus, data.fingerprint(), parameters)
    trained = train_and_register(data, Registry(tmp_path / "registry"), PARAMS)
    assert trained.manifest.metrics["real_text_dev"]["figures"]["all rows"]["department_top1"] == 0.8
    card = (trained.folder / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "Real messages" in card and "department top-1 0.800" in card
    assert "58.0% auto-routed, department right for 0.930" in card and "department_top1 [0.780, 0.820]" in card
    assert recorded_real_text_figures(data, parameters) is not None
    assert recorded_real_text_figures(data, parameters | {"C": 1.0}) is None  # another configuration
    record(small_corpus, "0" * 64, parameters)  # figures of other data
    assert recorded_real_text_figures(data, parameters) is None
