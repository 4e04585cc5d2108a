"""Stratified k-fold cross-validation of the whole pipeline, for comparing configurations honestly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from model.classifier import TriageModel
from model.metrics import evaluate_model
from training.dataset import LabelledData


def cross_validate_pipeline(
    data: LabelledData,
    folds: int = 5,
    params: dict[str, Any] | None = None,
    on_fold: Callable[[], None] = lambda: None,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean and standard deviation of held-out-fold metrics per head (shuffle, random_state=seed)."""
    texts = np.asarray(data.texts, dtype=object)
    targets = np.asarray(data.targets(), dtype=object)
    labels = np.asarray(data.labels)
    scores: dict[str, dict[str, list[float]]] = {}
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(texts, labels):
        model = TriageModel(**(params or {})).fit(list(texts[train_idx]), targets[train_idx])
        truth = {"domain": list(labels[test_idx])}
        if data.departments is not None:
            truth["department"] = [data.departments[i] for i in test_idx]
        for head, metrics in evaluate_model(model, list(texts[test_idx]), truth).items():
            per_head = scores.setdefault(head, {})
            for key in ("macro_f1", "accuracy", "top3_accuracy", "coverage_at_threshold", "precision_at_threshold"):
                per_head.setdefault(key, []).append(metrics[key])
        on_fold()
    return {
        "folds": folds,
        "rows": len(data),
        "heads": {
            head: {key: {"mean": float(np.mean(v)), "std": float(np.std(v))} for key, v in metrics.items()}
            for head, metrics in scores.items()
        },
    }
