"""Which domain goes with which department: the weights of joint decoding.

Joint decoding scores a (domain, department) pair as P(domain) P(department) w(pair). With w = 1 for
every pair seen in training and 0 otherwise, a department says nothing about the domain whenever both
domains own it: real messages about housing subsidies or shanty-town renovation went to the housing
department (right) but were read as `other` (the domain head was split about evenly), although nine in
ten housing petitions of the corpus are real estate. Weighting each seen pair by its pointwise mutual
information, P(pair) / (P(domain) P(department)), raised to a power, lets a confident department lean the
domain toward the pair the corpus says is usual. The power is chosen on out-of-fold predictions (the
likelihood of the true pair), so a fresh training run reproduces it without any external data; 0 gives
back the plain seen/unseen mask.
"""

from __future__ import annotations

import numpy as np

PAIR_PRIOR_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


def pair_counts(
    domains: np.ndarray, departments: np.ndarray, shape: tuple[int, int], weights: np.ndarray | None = None
) -> np.ndarray:
    """(domain x department) matrix of (weighted) training rows; `domains`/`departments` are class indices."""
    counts = np.zeros(shape)
    np.add.at(counts, (domains, departments), 1.0 if weights is None else weights)
    return counts


def pair_weights(counts: np.ndarray, power: float) -> np.ndarray:
    """Seen pairs weighted by their pointwise mutual information to `power`; unseen pairs 0."""
    joint = counts / counts.sum()
    expected = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    ratio = np.divide(joint, expected, out=np.zeros_like(joint), where=counts > 0)
    return np.where(counts > 0, ratio**power, 0.0)


def true_pair_log_likelihood(
    domain: np.ndarray,
    department: np.ndarray,
    pairs: np.ndarray,
    truth: tuple[np.ndarray, np.ndarray],
    weights: np.ndarray | None = None,
) -> float:
    """Mean log-probability that joint decoding with `pairs` gives the true (domain, department) pair."""
    rows = np.arange(len(domain))
    total = ((domain @ pairs) * department).sum(axis=1)
    true = domain[rows, truth[0]] * department[rows, truth[1]] * pairs[truth[0], truth[1]]
    scores = np.log(np.maximum(true, 1e-12) / np.maximum(total, 1e-12))
    return float(np.average(scores, weights=weights))


def choose_pair_prior(
    domain: np.ndarray,
    department: np.ndarray,
    truth: tuple[np.ndarray, np.ndarray],
    counts: np.ndarray,
    weights: np.ndarray | None = None,
    grid: tuple[float, ...] = PAIR_PRIOR_GRID,
) -> float:
    """The power of `grid` whose pair weights give out-of-fold predictions the highest likelihood of the
    true pair (the smaller power on a tie)."""
    scores = [
        true_pair_log_likelihood(domain, department, pair_weights(counts, power), truth, weights) for power in grid
    ]
    return grid[int(np.argmax(scores))]
