"""Bootstrap intervals of routing figures, and paired intervals of the difference between two models."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from model.metrics import (
    RoutingOutcome,
    difference_intervals,
    figure_intervals,
    head_metrics,
    interval_lines,
    macro_f1,
)
from training.promotion import Comparison, clearly_worse


def outcome(right: np.ndarray, seed: int = 0) -> RoutingOutcome:
    """Rows whose department is right where `right` says; domains from a fixed draw, every row confident."""
    generator = np.random.default_rng(seed)
    domains = generator.choice(np.array(["education", "other", "real_estate"]), len(right))
    return RoutingOutcome(
        domain_truth=domains,
        domain_predicted=domains,
        department_right=right,
        department_top3=np.ones(len(right), dtype=bool),
        confident=np.ones(len(right), dtype=bool),
        routed_right=right,
    )


def rights(rows: int, share: float, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random(rows) < share


def test_an_interval_holds_its_figure_is_repeatable_and_narrows_with_more_rows() -> None:
    many = outcome(rights(2000, 0.8))
    intervals = figure_intervals(many, resamples=300)
    top1 = many.figures().department_top1
    assert top1 is not None and intervals["department_top1"].low < top1 < intervals["department_top1"].high
    assert figure_intervals(many, resamples=300) == intervals  # seeded: the same interval every run
    few = figure_intervals(outcome(rights(100, 0.8)), resamples=300)["department_top1"]
    width = intervals["department_top1"].high - intervals["department_top1"].low
    assert few.high - few.low > 3 * width  # 20x fewer rows: about 4.5x wider
    assert figure_intervals(many, resamples=300, level=0.5)["department_top1"].high < intervals["department_top1"].high
    # A figure that cannot vary (every row in the top three) has a point interval.
    assert intervals["department_top3"].low == intervals["department_top3"].high == 1.0


def test_the_difference_of_a_model_from_itself_is_zero_and_a_real_gain_excludes_zero() -> None:
    base = rights(800, 0.8)
    same = difference_intervals(outcome(base), outcome(base), resamples=200)
    assert all(interval.low == interval.high == 0.0 for interval in same.values())
    assert not same["department_top1"].excludes_zero()
    better = base.copy()
    better[np.flatnonzero(~base)[:60]] = True  # 60 of 800 rows mended, none broken
    gain = difference_intervals(outcome(better), outcome(base), resamples=200)["department_top1"]
    assert gain.excludes_zero() and gain.low > 0
    flipped = base.copy()
    flipped[np.flatnonzero(~base)[:3]] = True  # three rows mended, three broken: no telling them apart
    flipped[np.flatnonzero(base)[:3]] = False
    noise = difference_intervals(outcome(flipped), outcome(base), resamples=200)["department_top1"]
    assert not noise.excludes_zero()
    # Promotion's "clearly worse" reads the same paired resamples.
    assert f"部门 top-1 / department top-1: {base.mean():.3f} < {better.mean():.3f}" in clearly_worse(
        outcome(base), outcome(better)
    )
    assert clearly_worse(outcome(flipped), outcome(base)) == []


def test_macro_f1_is_scikit_learns_over_the_labels_of_either_side() -> None:
    generator = np.random.default_rng(3)
    for rows in (1, 7, 300):
        truth = generator.choice(np.array(["a", "b", "c", "d"]), rows)
        predicted = generator.choice(np.array(["a", "b", "c", "e"]), rows)  # "d" never predicted, "e" never true
        labels = sorted(set(truth) | set(predicted))
        expected = f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)
        assert macro_f1(truth, predicted) == pytest.approx(expected, abs=1e-12)
    assert macro_f1(np.array([], dtype=str), np.array([], dtype=str)) == 0.0


def test_a_heads_macro_f1_leaves_out_classes_the_file_never_has_and_the_model_never_predicts() -> None:
    """An office file of 2 of the model's 4 departments: the 2 others are no error on it (scikit-learn's default)."""
    classes = ["education", "health", "housing", "transport"]
    truth = ["housing", "housing", "education", "education", "housing"]
    proba = np.array([[0.1, 0.0, 0.9, 0.0]] * 2 + [[0.9, 0.0, 0.1, 0.0]] * 2 + [[0.6, 0.1, 0.3, 0.0]])
    predicted = np.asarray(classes)[proba.argmax(axis=1)]  # the last housing row as education
    metrics = head_metrics(proba, classes, truth, threshold=0.5)
    assert metrics["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro", zero_division=0))
    assert metrics["macro_f1"] == pytest.approx(macro_f1(np.asarray(truth), predicted))
    assert metrics["macro_f1"] > 0.75 and metrics["accuracy"] == pytest.approx(0.8)


def test_outcomes_of_different_rows_are_refused_and_lines_carry_the_labels() -> None:
    with pytest.raises(ValueError, match="different rows"):
        difference_intervals(outcome(rights(50, 0.5)), outcome(rights(60, 0.5)), resamples=10)
    assert figure_intervals(outcome(rights(0, 0.5)), resamples=10) == {}  # no rows, no interval
    one = outcome(rights(300, 0.7))
    lines = interval_lines(one.figures(), figure_intervals(one, resamples=100))
    assert any(line.startswith("部门 top-1 / department top-1: 0.") and line.endswith("]") for line in lines)
    assert len(lines) == 5


def test_a_comparison_keeps_its_change_intervals_through_the_manifest_and_shows_them() -> None:
    base = rights(400, 0.8)
    better = base.copy()
    better[np.flatnonzero(~base)[:30]] = True
    new, current = outcome(better), outcome(base)
    changes = difference_intervals(new, current, resamples=200)
    comparison = Comparison("new", "old", 400, new.figures(), current.figures(), "", (), changes)
    assert Comparison.from_dict(comparison.to_dict()) == comparison
    row = next(line for line in comparison.table() if "department top-1" in line)
    interval = changes["department_top1"]
    assert f"+0.075 {interval.signed()}" in row and interval.signed().startswith("[+0.") and interval.low > 0
    recorded_before_intervals = {key: value for key, value in comparison.to_dict().items() if key != "changes"}
    assert Comparison.from_dict(recorded_before_intervals).changes == {}
