"""Evaluation metrics for a fitted model on labelled held-out data (pure: numbers in, dict out)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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
        # Over the labels of truth or prediction (scikit-learn's default, as `macro_f1`): a class of the model
        # that the file never has and the model never predicted is no error on this file.
        "macro_f1": float(f1_score(truth_array, predicted, average="macro", zero_division=0)),
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


def macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Macro-F1 over the labels of either array, an absent class scoring 0: scikit-learn's `f1_score(average=
    "macro", zero_division=0)` with those labels, in a few array operations, for the thousand resamples of an
    interval (scikit-learn's checks cost a millisecond a call)."""
    if len(truth) == 0:
        return 0.0
    labels, codes = np.unique(np.concatenate([truth, predicted]), return_inverse=True)
    true_codes, predicted_codes = codes[: len(truth)], codes[len(truth) :]
    hits = np.bincount(true_codes[true_codes == predicted_codes], minlength=len(labels))
    denominator = np.bincount(true_codes, minlength=len(labels)) + np.bincount(predicted_codes, minlength=len(labels))
    return float(np.mean(2.0 * hits / denominator))


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
        return RoutingFigures(
            rows=len(pick),
            domain_accuracy=float((truth == predicted).mean()) if len(pick) else 0.0,
            domain_macro_f1=macro_f1(truth, predicted),
            department_top1=None if self.department_right is None else float(self.department_right[pick].mean()),
            department_top3=None if self.department_top3 is None else float(self.department_top3[pick].mean()),
            auto_coverage=float(confident.mean()) if len(pick) else 0.0,
            auto_precision=float(right[confident].mean()) if confident.any() else 1.0,
        )


# Resamples behind a reported interval: enough for stable 2.5% / 97.5% percentiles (a few seconds on
# 1,377 rows), unlike the 200 that suffice for `training.promotion`'s yes/no "clearly worse" test.
INTERVAL_RESAMPLES = 1000


@dataclass(frozen=True)
class Interval:
    """A bootstrap percentile interval of one figure (or of a difference between two models)."""

    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0

    def __str__(self) -> str:
        return f"[{self.low:.3f}, {self.high:.3f}]"

    def signed(self) -> str:
        """As a difference's interval is read: `[-0.004, +0.006]`."""
        return f"[{self.low:+.3f}, {self.high:+.3f}]"


def resampled_figures(
    outcomes: Sequence[RoutingOutcome], resamples: int, seed: int = 0
) -> Iterator[tuple[RoutingFigures, ...]]:
    """The figures of each outcome on the same bootstrap resamples of their rows (the rows must be the same).

    Paired: every model is scored on the same drawn rows, so a difference between models is not drowned
    by which rows happened to be drawn."""
    rows = len(outcomes[0].confident)
    if any(len(outcome.confident) != rows for outcome in outcomes):
        raise ValueError("outcomes of different rows cannot be resampled together")
    if rows == 0:
        return  # nothing to draw: no interval
    generator = np.random.default_rng(seed)
    for _ in range(resamples):
        pick = generator.integers(0, rows, rows)
        yield tuple(outcome.figures(pick) for outcome in outcomes)


def _percentiles(samples: Mapping[str, list[float]], level: float) -> dict[str, Interval]:
    tail = (1.0 - level) / 2 * 100
    return {
        name: Interval(float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))
        for name, values in samples.items()
        if values
    }


def _numeric_figures(figures: RoutingFigures) -> dict[str, float]:
    return {name: value for name, _ in RoutingFigures.COLUMNS if (value := getattr(figures, name)) is not None}


def figure_intervals(
    outcome: RoutingOutcome, resamples: int = INTERVAL_RESAMPLES, level: float = 0.95, seed: int = 0
) -> dict[str, Interval]:
    """Percentile bootstrap interval of each `RoutingFigures.COLUMNS` figure (keyed by field name).

    How far the figures could move on another sample of the same kind of petitions: on a few hundred rows,
    or a label with a handful of rows, that is several points."""
    samples: dict[str, list[float]] = {name: [] for name, _ in RoutingFigures.COLUMNS}
    for (figures,) in resampled_figures([outcome], resamples, seed):
        for name, value in _numeric_figures(figures).items():
            samples[name].append(value)
    return _percentiles(samples, level)


def difference_intervals(
    new: RoutingOutcome,
    current: RoutingOutcome,
    resamples: int = INTERVAL_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """Paired bootstrap interval of `new - current` for each figure both have, on the same rows.

    An interval that holds zero means these rows cannot tell the two models apart on that figure."""
    samples: dict[str, list[float]] = {name: [] for name, _ in RoutingFigures.COLUMNS}
    for ours, theirs in resampled_figures([new, current], resamples, seed):
        mine, other = _numeric_figures(ours), _numeric_figures(theirs)
        for name in mine.keys() & other.keys():
            samples[name].append(mine[name] - other[name])
    return _percentiles(samples, level)


def interval_lines(figures: RoutingFigures, intervals: Mapping[str, Interval]) -> list[str]:
    """One line per figure with its interval, labelled as `RoutingFigures.COLUMNS` labels it."""
    return [
        f"{label}: {getattr(figures, name):.3f} {intervals[name]}"
        for name, label in RoutingFigures.COLUMNS
        if name in intervals and getattr(figures, name) is not None
    ]


def routing_outcome(
    model: Any, targets: Mapping[str, Sequence[str] | np.ndarray], probabilities: Mapping[str, np.ndarray]
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
