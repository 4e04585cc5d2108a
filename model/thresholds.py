"""Abstention thresholds: auto-route only when the model is confident enough to be right."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def coverage_precision(confidence: ArrayLike, correct: ArrayLike, threshold: float) -> tuple[float, float]:
    """Share of items at or above `threshold` and the precision among them (1.0 when none)."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=bool)
    accepted = confidence >= threshold
    coverage = float(accepted.mean()) if len(accepted) else 0.0
    precision = float(correct[accepted].mean()) if accepted.any() else 1.0
    return coverage, precision


def choose_threshold(confidence: ArrayLike, correct: ArrayLike, target_precision: float = 0.95) -> float:
    """Lowest confidence threshold whose accepted set reaches `target_precision`.

    Scans thresholds from high to low and keeps the lowest one at which the
    precision of everything above it still meets the target, so coverage is as
    large as the target allows. Returns 1.0 (route nothing automatically) when no
    threshold reaches it. `confidence` must come from held-out predictions.
    """
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=bool)
    if confidence.size == 0:
        return 1.0
    order = np.argsort(-confidence, kind="stable")
    sorted_conf = confidence[order]
    running_precision = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    # Only cut between distinct confidence values: ties are accepted or refused together.
    last_of_tie = np.append(sorted_conf[1:] != sorted_conf[:-1], True)
    ok = (running_precision >= target_precision) & last_of_tie
    if not ok.any():
        return 1.0
    return float(sorted_conf[np.flatnonzero(ok)[-1]])
