"""Pair weights of joint decoding (model/pairs.py): what they do and how their power is chosen."""

from __future__ import annotations

import numpy as np

from model.classifier import TriageModel
from model.pairs import PAIR_PRIOR_GRID, choose_pair_prior, pair_counts, pair_weights

# Domains (real_estate, other) x departments (housing, transport): housing is mostly real estate.
COUNTS = np.array([[90.0, 0.0], [10.0, 100.0]])


def test_power_zero_is_the_seen_pair_mask_and_unseen_pairs_stay_impossible() -> None:
    np.testing.assert_array_equal(pair_weights(COUNTS, 0.0), [[1.0, 0.0], [1.0, 1.0]])
    for power in PAIR_PRIOR_GRID:
        assert pair_weights(COUNTS, power)[0, 1] == 0.0


def test_pair_counts_add_row_weights() -> None:
    counts = pair_counts(np.array([0, 0, 1]), np.array([0, 0, 1]), (2, 2), np.array([1.0, 2.0, 0.5]))
    np.testing.assert_array_equal(counts, [[3.0, 0.0], [0.0, 0.5]])


def test_a_confident_department_leans_an_undecided_domain_to_its_usual_owner() -> None:
    model = TriageModel()
    proba = {"domain": np.array([[0.45, 0.55]]), "department": np.array([[0.95, 0.05]])}
    model.pairs_ = pair_weights(COUNTS, 0.0)
    assert model._decode(proba)["domain"][0].argmax() == 1  # both pairs seen: the department says nothing
    model.pairs_ = pair_weights(COUNTS, 0.5)
    decoded = model._decode(proba)
    assert decoded["domain"][0].argmax() == 0
    assert decoded["department"][0].argmax() == 0
    np.testing.assert_allclose(decoded["domain"].sum(), 1.0)


def test_a_confident_domain_is_not_overruled_by_the_pair_weights_chosen() -> None:
    model = TriageModel()
    model.pairs_ = pair_weights(COUNTS, 0.2)
    decoded = model._decode({"domain": np.array([[0.05, 0.95]]), "department": np.array([[0.95, 0.05]])})
    assert decoded["domain"][0].argmax() == 1


def _out_of_fold(rng: np.random.Generator, rows: int, domain_sharpness: float) -> tuple[np.ndarray, ...]:
    """Rows drawn from COUNTS; the department head is sure, the domain head as sure as `domain_sharpness`."""
    pairs = rng.choice(4, size=rows, p=(COUNTS / COUNTS.sum()).ravel())
    domains, departments = pairs // 2, pairs % 2
    domain = np.full((rows, 2), (1 - domain_sharpness) / 2)
    domain[np.arange(rows), domains] += domain_sharpness
    department = np.full((rows, 2), 0.025)
    department[np.arange(rows), departments] = 0.975
    return domain, department, domains, departments


def test_the_power_grows_when_the_domain_head_is_unsure_and_the_pairs_are_informative() -> None:
    rng = np.random.default_rng(0)
    unsure = _out_of_fold(rng, 2000, domain_sharpness=0.05)
    counts = pair_counts(unsure[2], unsure[3], (2, 2))
    unsure_power = choose_pair_prior(unsure[0], unsure[1], (unsure[2], unsure[3]), counts)
    sure = _out_of_fold(rng, 2000, domain_sharpness=0.9)
    sure_power = choose_pair_prior(sure[0], sure[1], (sure[2], sure[3]), pair_counts(sure[2], sure[3], (2, 2)))
    assert unsure_power >= 0.5 and sure_power < unsure_power


def test_pairs_that_carry_no_information_choose_power_zero() -> None:
    domain, department, domains, departments = _out_of_fold(np.random.default_rng(1), 500, domain_sharpness=0.3)
    independent = np.full((2, 2), 25.0)  # every pair as frequent as its domain and department predict
    assert choose_pair_prior(domain, department, (domains, departments), independent) == 0.0
