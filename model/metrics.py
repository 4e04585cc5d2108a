"""Evaluation metrics for a fitted model on labelled held-out data (pure: numbers in, dict out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from model.thresholds import coverage_precision


def calibration_bins(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Reliability-diagram data and expected calibration error."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows = []
    ece = 0.0
    for b in range(bins):
        mask = index == b
        if not mask.any():
            continue
        mean_conf, accuracy = float(confidence[mask].mean()), float(correct[mask].mean())
        ece += mask.mean() * abs(mean_conf - accuracy)
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": int(mask.sum()),
                "confidence": mean_conf,
                "accuracy": accuracy,
            }
        )
    return {"bins": rows, "ece": float(ece)}


def head_metrics(proba: np.ndarray, classes: Sequence[str], truth: Sequence[str], threshold: float) -> dict[str, Any]:
    """Classification, ranking, abstention and calibration metrics for one head."""
    classes_array = np.asarray(classes)
    truth_array = np.asarray(truth)
    predicted = classes_array[proba.argmax(axis=1)]
    confidence = proba.max(axis=1)
    correct = predicted == truth_array
    labels = sorted(set(classes) | set(truth))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth_array, predicted, labels=labels, zero_division=0
    )
    top3 = np.argsort(-proba, axis=1)[:, :3]
    in_top3 = np.array([t in classes_array[row] for t, row in zip(truth_array, top3, strict=True)])
    coverage, precision_at = coverage_precision(confidence, correct, threshold)
    return {
        "n": len(truth_array),
        "accuracy": float(accuracy_score(truth_array, predicted)),
        "macro_f1": float(f1_score(truth_array, predicted, labels=labels, average="macro", zero_division=0)),
        "top3_accuracy": float(in_top3.mean()),
        "threshold": threshold,
        "coverage_at_threshold": coverage,
        "precision_at_threshold": precision_at,
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "confusion": {"labels": labels, "matrix": confusion_matrix(truth_array, predicted, labels=labels).tolist()},
        "calibration": calibration_bins(confidence, correct),
    }


def evaluate_model(
    model: Any,
    texts: Sequence[str],
    targets: Mapping[str, Sequence[str]],
    probabilities: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Metrics for every head of `model` that has truth in `targets` (head name -> labels).

    Pass `probabilities` (from `model.head_probabilities`) when they are at hand, to skip featurising again.
    """
    if probabilities is None:
        probabilities = model.head_probabilities(model.transform(texts))
    results: dict[str, Any] = {}
    for name in model.head_names_:
        if name in targets:
            proba = probabilities[name]
            results[name] = head_metrics(proba, model.classes(name), targets[name], model.thresholds_[name])
    return results


@dataclass(frozen=True)
class RoutingFigures:
    """What an office compares two models by, on the same rows: the figures `triage promote` checks.

    `auto_*`: items with no head below its threshold go to the department's queue without review;
    precision is the share of those whose department (domain, for a one-head model) is right.
    """

    rows: int
    domain_accuracy: float
    domain_macro_f1: float
    department_top1: float | None
    department_top3: float | None
    auto_coverage: float
    auto_precision: float

    # (field, label) in table order.
    COLUMNS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("domain_macro_f1", "领域 macro-F1 / domain macro-F1"),
        ("department_top1", "部门 top-1 / department top-1"),
        ("department_top3", "部门 top-3 / department top-3"),
        ("auto_coverage", "自动分流占比 / auto coverage"),
        ("auto_precision", "自动分流准确率 / auto precision"),
    )


@dataclass(frozen=True)
class RoutingOutcome:
    """Per-row facts behind RoutingFigures, so figures can be recomputed on resampled rows."""

    domain_truth: np.ndarray
    domain_predicted: np.ndarray
    department_right: np.ndarray | None
    department_top3: np.ndarray | None
    confident: np.ndarray
    routed_right: np.ndarray

    def figures(self, rows: np.ndarray | None = None) -> RoutingFigures:
        pick = np.arange(len(self.confident)) if rows is None else rows
        truth, predicted, confident = self.domain_truth[pick], self.domain_predicted[pick], self.confident[pick]
        right = self.routed_right[pick]
        labels = sorted(set(truth) | set(predicted))
        return RoutingFigures(
            rows=len(pick),
            domain_accuracy=float((truth == predicted).mean()) if len(pick) else 0.0,
            domain_macro_f1=float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
            department_top1=None if self.department_right is None else float(self.department_right[pick].mean()),
            department_top3=None if self.department_top3 is None else float(self.department_top3[pick].mean()),
            auto_coverage=float(confident.mean()) if len(pick) else 0.0,
            auto_precision=float(right[confident].mean()) if confident.any() else 1.0,
        )


def routing_outcome(
    model: Any, targets: Mapping[str, Sequence[str]], probabilities: Mapping[str, np.ndarray]
) -> RoutingOutcome:
    """Per-row domain prediction, department hits (top-1, top-3) and auto-routing of decoded `probabilities`."""
    confident = np.ones(len(targets["domain"]), dtype=bool)
    for name, proba in probabilities.items():
        confident &= proba.max(axis=1) >= model.thresholds_[name]
    predicted = {name: np.asarray(model.classes(name))[proba.argmax(axis=1)] for name, proba in probabilities.items()}
    department_right = department_top3 = None
    if "department" in probabilities and "department" in targets:
        truth = np.asarray(targets["department"])
        department_right = predicted["department"] == truth
        top3 = np.asarray(model.classes("department"))[np.argsort(-probabilities["department"], axis=1)[:, :3]]
        department_top3 = (top3 == truth[:, None]).any(axis=1)
    domain_truth = np.asarray(targets["domain"])
    domain_right = predicted["domain"] == domain_truth
    return RoutingOutcome(
        domain_truth=domain_truth,
        domain_predicted=predicted["domain"],
        department_right=department_right,
        department_top3=department_top3,
        confident=confident,
        routed_right=department_right if department_right is not None else domain_right,
    )
