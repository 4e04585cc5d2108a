import numpy as np

from model.thresholds import choose_threshold, coverage_precision


def test_threshold_reaches_target_precision_with_maximum_coverage() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.2, 1.0, 5000)
    correct = rng.uniform(0, 1, 5000) < confidence  # accuracy rises with confidence
    threshold = choose_threshold(confidence, correct, 0.9)
    coverage, precision = coverage_precision(confidence, correct, threshold)
    assert precision >= 0.9
    lower = np.sort(confidence)[np.searchsorted(np.sort(confidence), threshold) - 1]
    assert coverage_precision(confidence, correct, lower)[1] < 0.9
    assert 0.05 < coverage < 0.6


def test_unreachable_target_routes_nothing_automatically() -> None:
    assert choose_threshold([0.9, 0.8, 0.7], [False, False, True], 0.95) == 1.0


def test_ties_are_accepted_or_refused_together() -> None:
    threshold = choose_threshold([0.9, 0.6, 0.6, 0.6], [True, True, False, False], 0.9)
    assert threshold == 0.9
