"""Training orchestration: fit on the training split, evaluate on held-out data, register the version."""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sklearn.model_selection import train_test_split

from model.classifier import TriageModel
from model.metrics import evaluate_model
from model.persistence import Manifest, save_model, write_manifest
from model.registry import Registry
from model.taxonomy import Taxonomy, load_taxonomy
from training.dataset import LabelledData
from training.report import write_report

LIBRARIES = ("scikit-learn", "jieba", "numpy", "scipy", "skops", "opencc")


@dataclass(frozen=True)
class TrainResult:
    version: str
    folder: Path
    manifest: Manifest
    promoted: bool


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def split_holdout(data: LabelledData, holdout: float, seed: int = 0) -> tuple[LabelledData, LabelledData]:
    """Use the split recorded in the data; otherwise hold out a stratified share, fixed by `seed`."""
    if "test" in data.splits:
        return data.subset("train"), data.subset("test")
    _, test_idx = train_test_split(range(len(data)), test_size=holdout, stratify=data.labels, random_state=seed)
    data.splits = ["train"] * len(data)
    for index in test_idx:
        data.splits[index] = "test"
    return data.subset("train"), data.subset("test")


def head_targets(data: LabelledData) -> dict[str, list[str]]:
    targets = {"domain": data.labels}
    if data.departments is not None:
        targets["department"] = data.departments
    return targets


def model_card(manifest: Manifest, taxonomy: Taxonomy) -> str:
    lines = [
        f"# Model card: petition triage {manifest.version}",
        "",
        "## Intended use",
        "Suggests the domain and responsible department of a Chinese petition (信访件) to an intake clerk, "
        "who accepts or corrects it. Items below the stored confidence thresholds are marked "
        "`needs_review` and go to manual triage. It does not decide a case.",
        "",
        "## Training data",
        f"- sources: {', '.join(manifest.training_data.get('sources', []))}",
        f"- training rows: {manifest.training_data.get('train_rows')}, held-out rows: "
        f"{manifest.training_data.get('test_rows')}",
        f"- sha256: {manifest.training_data.get('sha256')}",
        "",
        "## Labels",
    ]
    for head, labels in manifest.labels.items():
        lines.append(f"- {head}: " + ", ".join(f"{label} {taxonomy.name(label, head)}" for label in labels))
    lines += ["", "## Held-out results"]
    for head, metrics in manifest.metrics.get("test", {}).items():
        lines.append(
            f"- {head}: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}, top-3 "
            f"{metrics['top3_accuracy']:.3f}, coverage {metrics['coverage_at_threshold']:.3f} at precision "
            f"{metrics['precision_at_threshold']:.3f}"
        )
    lines += [
        "",
        "## Limitations",
        "- The default corpus is hand-written by the project team; real petitions are messier. "
        "Judge the model on your own labelled history before relying on it.",
        "- Thresholds were chosen on out-of-fold predictions of the training split; "
        "re-check coverage after any change in the mix of petitions.",
        "",
    ]
    return "\n".join(lines)


def train_and_register(
    data: LabelledData,
    registry: Registry,
    params: dict[str, Any] | None = None,
    holdout: float = 0.2,
    taxonomy: Taxonomy | None = None,
    step: Callable[[str], None] = lambda _: None,
) -> TrainResult:
    """Fit, evaluate on held-out rows, write model + manifest + report + card; first model becomes current."""
    taxonomy = taxonomy or load_taxonomy()
    step("split")
    train_part, test_part = split_holdout(data, holdout)
    step("fit")
    model = TriageModel(**(params or {})).fit(train_part.texts, train_part.targets())
    step("evaluate")
    test_metrics = evaluate_model(model, test_part.texts, head_targets(test_part))
    step("save")
    version = registry.new_version()
    folder = registry.root / version
    sha256 = save_model(model, folder)
    manifest = Manifest(
        version=version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        model_sha256=sha256,
        training_data={
            "sources": data.sources,
            "sha256": data.fingerprint(),
            "rows": len(data),
            "train_rows": len(train_part),
            "test_rows": len(test_part),
            "skipped_invalid_rows": len(data.invalid),
        },
        labels={head: model.classes(head) for head in model.head_names_},
        thresholds=model.thresholds_,
        metrics={"test": test_metrics, "out_of_fold_train": model.validation_},
        parameters={
            key: list(value) if isinstance(value, tuple) else value for key, value in model.get_params().items()
        },
        library_versions=library_versions(),
    )
    write_manifest(manifest, folder)
    write_report(
        test_metrics,
        folder,
        f"Evaluation of {version} on {len(test_part)} held-out rows",
        taxonomy,
        notes=["Held-out rows were never seen in training or threshold selection."],
    )
    (folder / "MODEL_CARD.md").write_text(model_card(manifest, taxonomy), encoding="utf-8")
    promoted = registry.current() is None
    if promoted:
        registry.promote(version)
    return TrainResult(version, folder, manifest, promoted)
