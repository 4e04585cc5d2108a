"""Evaluation metrics for a fitted model on labelled held-out data (pure: numbers in, dict out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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


def evaluate_model(model: Any, texts: Sequence[str], targets: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Metrics for every head of `model` that has truth in `targets` (head name -> labels)."""
    probabilities = model.head_probabilities(model.transform(texts))
    results: dict[str, Any] = {}
    for name in model.head_names_:
        if name in targets:
            proba = probabilities[name]
            results[name] = head_metrics(proba, model.classes(name), targets[name], model.thresholds_[name])
    return results
