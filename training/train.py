"""Training orchestration: fit on the training split, evaluate on held-out data, register the version."""

from __future__ import annotations

import json
import math
import platform
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sklearn.model_selection import train_test_split

from model.classifier import MIN_EXAMPLES_PER_LABEL, TriageModel
from model.metrics import evaluate_model
from model.persistence import Manifest, save_model, write_manifest
from model.registry import Registry
from model.taxonomy import Taxonomy, load_taxonomy
from training.dataset import LabelledData, real_text_record_path
from training.report import write_report

LIBRARIES = ("scikit-learn", "jieba", "rjieba", "numpy", "scipy", "skops", "opencc")


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


class TrainingDataError(ValueError):
    """The labelled data cannot train a model (message in Chinese and English)."""


def check_trainable(data: LabelledData, holdout: float) -> None:
    """Refuse, with a message people can act on, data that scikit-learn would refuse in English."""
    has_split = "test" in data.splits
    if not has_split and not 0 < holdout < 1:
        raise TrainingDataError(f"留出比例应大于 0 且小于 1 / --holdout must be between 0 and 1 (got {holdout})")
    rows = data.subset("train") if has_split else data
    needed = MIN_EXAMPLES_PER_LABEL if has_split else max(2, math.ceil(MIN_EXAMPLES_PER_LABEL / (1 - holdout)))
    for head, labels in head_targets(rows).items():
        counts = Counter(labels)
        if len(counts) < 2:
            raise TrainingDataError(
                f"{head}: 至少需要两个类别，只找到 {sorted(counts)} / at least two classes are needed, "
                f"found {sorted(counts)}"
            )
        rare = sorted(label for label, count in counts.items() if count < needed)
        if rare:
            raise TrainingDataError(
                f"{head}: 每个类别至少需要 {needed} 行，以下类别不足 / each class needs at least {needed} rows; "
                f"too few: {', '.join(rare[:10])}"
            )
        if not has_split and math.floor(len(labels) * holdout) < len(counts):
            raise TrainingDataError(
                f"{head}: 留出集太小，每个类别至少要有一行 / the held-out share ({holdout}) of {len(labels)} rows "
                f"is smaller than the {len(counts)} classes; add rows or raise --holdout"
            )


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


def manifest_parameters(model: TriageModel) -> dict[str, Any]:
    """The model's parameters as the manifest stores them (JSON: tuples become lists)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in model.get_params().items()}


def recorded_real_text_figures(data: LabelledData, parameters: dict[str, Any]) -> dict[str, Any] | None:
    """Dev-set figures recorded by `benchmarks/real_data.py --record` for exactly this data and configuration.

    The real messages are not shipped, so a fresh checkout cannot measure them; training is deterministic,
    so figures measured on a model from the same data and parameters hold for this one too.
    """
    path = real_text_record_path()
    if not path.is_file():
        return None
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if record.get("training_data_sha256") != data.fingerprint() or record.get("parameters") != parameters:
        return None
    return record


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
        f"- report model: {manifest.training_data.get('train_rows')} training rows, "
        f"{manifest.training_data.get('test_rows')} held-out rows; shipped model: "
        f"{manifest.training_data.get('shipped_model_rows')} rows (refit on every row after the report)",
        f"- sha256: {manifest.training_data.get('sha256')}",
        "",
        "## Labels",
    ]
    for head, labels in manifest.labels.items():
        lines.append(f"- {head}: " + ", ".join(f"{label} {taxonomy.name(label, head)}" for label in labels))
    real = manifest.metrics.get("real_text_dev")
    if real:
        lines += ["", "## Real messages (dev set, not our own writing)"]
        lines.append(
            f"Measured by `{real['command']}` on model {real['model_version']}, trained from the same data and "
            "parameters (training is deterministic):"
        )
        for subset, figures in real["figures"].items():
            lines.append(
                f"- {subset} ({figures['rows']}): domain accuracy {figures['domain_accuracy']:.3f}, macro-F1 "
                f"{figures['domain_macro_f1']:.3f}; department top-1 {figures['department_top1']:.3f}, top-3 "
                f"{figures['department_top3']:.3f}; auto-routed {figures['department_auto_coverage']:.1%} of "
                f"departments at precision {figures['department_auto_precision']:.3f}, "
                f"{figures['domain_auto_coverage']:.1%} of domains at {figures['domain_auto_precision']:.3f}"
            )
    lines += ["", "## Held-out results (our own writing)"]
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
        "- Thresholds were chosen on out-of-fold predictions of the training rows for a strict precision "
        "target, set where real messages kept the promise; re-check coverage after any change in the mix "
        "of petitions.",
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
    refit: bool = True,
) -> TrainResult:
    """Fit, evaluate on held-out rows, refit on all rows, write model + manifest + report + card.

    The first model of a registry becomes current.
    """
    taxonomy = taxonomy or load_taxonomy()
    check_trainable(data, holdout)
    step("split")
    train_part, test_part = split_holdout(data, holdout)
    step("fit")
    model = TriageModel(**(params or {})).fit(train_part.texts, train_part.targets())
    step("evaluate")
    test_metrics = evaluate_model(model, test_part.texts, head_targets(test_part))
    if refit:
        # The report above is honest (held-out rows); the shipped model then learns from every row,
        # which measured about +1.6 points of department top-1 on real messages.
        step("refit")
        model = TriageModel(**(params or {})).fit(data.texts, data.targets())
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
            "shipped_model_rows": len(data) if refit else len(train_part),
            "skipped_invalid_rows": len(data.invalid),
        },
        labels={head: model.classes(head) for head in model.head_names_},
        thresholds=model.thresholds_,
        metrics={"test": test_metrics, "out_of_fold_train": model.validation_},
        parameters=manifest_parameters(model),
        library_versions=library_versions(),
        segmenter=model.trained_segmenter.value,
    )
    recorded = recorded_real_text_figures(data, manifest.parameters)
    if recorded is not None:
        manifest.metrics["real_text_dev"] = recorded
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
