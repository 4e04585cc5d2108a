"""A linear head with Platt-scaled probabilities, fitted once with its own out-of-fold scores.

Equivalent to scikit-learn's `CalibratedClassifierCV(LinearSVC(), method="sigmoid",
ensemble=False)`: the sigmoids are fitted on out-of-fold decision scores and the
LinearSVC on every row. Doing it by hand keeps those out-of-fold scores, so the
abstention thresholds come from the same folds instead of a second, nested
cross-validation (six fits per head instead of thirty-six), and the fitted head is
three plain arrays that load fast and predict without per-call overhead.

The five fold fits and the final fit are independent, so `fit(..., n_jobs=2)` runs them in worker
processes. Not threads: liblinear draws its coordinate-descent order from one global random
generator, so two fits running at once in one process disturb each other's order and the
weights differ in the last digits; each process has its own generator, reseeded by every fit,
so parallel fits give exactly the sequential weights.
"""

from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC


def column_scores(scores: np.ndarray) -> np.ndarray:
    """Decision scores as one column per class (a binary LinearSVC gives one column for class 1)."""
    return np.column_stack([-scores, scores]) if scores.ndim == 1 else scores


def _fit_svc(X: sparse.spmatrix, y: np.ndarray, sample_weight: np.ndarray | None, C: float, seed: int) -> LinearSVC:
    """Module functions, so that worker processes can run them."""
    return LinearSVC(C=C, random_state=seed).fit(X, y, sample_weight=sample_weight)


def _fold_scores(
    X: sparse.spmatrix,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    train: np.ndarray,
    test: np.ndarray,
    C: float,
    seed: int,
) -> np.ndarray:
    """Decision scores of the `test` rows from a LinearSVC fitted on the `train` rows (sliced here: X travels once)."""
    weights = None if sample_weight is None else sample_weight[train]
    scores: np.ndarray = _fit_svc(X[train], y[train], weights, C, seed).decision_function(X[test])
    return scores


# LinearSVC's C. Chosen on the real-text dev set (benchmarks/real_data.py): department top-1 rose
# steadily with stronger regularisation, 0.839 (C=4), 0.840 (2), 0.843 (1), 0.848 (0.5), 0.848 (0.25);
# the hand-written corpus is more regular than citizens' messages, and a smaller C leans on it less.
DEFAULT_C = 0.5


class PlattLinearHead(ClassifierMixin, BaseEstimator):
    """LinearSVC ranking, per-class sigmoid probabilities normalised to sum to one."""

    def __init__(self, C: float = DEFAULT_C, folds: int = 5, random_state: int = 0) -> None:
        self.C = C
        self.folds = folds
        self.random_state = random_state

    def fit(
        self, X: sparse.spmatrix, y: np.ndarray, sample_weight: np.ndarray | None = None, n_jobs: int | None = None
    ) -> PlattLinearHead:
        """`sample_weight` weighs rows in the LinearSVC fits and in the sigmoid fits alike.

        The same numbers as `cross_val_predict(LinearSVC, method="decision_function")` plus a fit on
        every row, the six fits run in `n_jobs` processes (None: joblib's default, one unless configured).
        A fit argument, not a parameter: it changes how fast the head is fitted, never what it learns,
        so it is neither saved with the head nor part of a model's recorded parameters.
        """
        labels = np.asarray(y).astype(str)
        self.classes_ = np.unique(labels)
        encoded = np.searchsorted(self.classes_, labels)  # the folds fit on class indices, as cross_val_predict's
        splits = list(StratifiedKFold(self.folds, shuffle=True, random_state=self.random_state).split(X, encoded))
        weights = None if sample_weight is None else np.asarray(sample_weight)
        seed = self.random_state
        # The final fit (the largest) first, so it is not the one left running alone at the end.
        final, *fold_scores = Parallel(n_jobs=n_jobs, backend="loky")(
            [delayed(_fit_svc)(X, labels, weights, self.C, seed)]
            + [delayed(_fold_scores)(X, encoded, weights, train, test, self.C, seed) for train, test in splits]
        )
        first = fold_scores[0]
        oof = np.empty((X.shape[0], *first.shape[1:]), dtype=first.dtype)
        for (_, test), scores in zip(splits, fold_scores, strict=True):
            oof[test] = scores
        oof = column_scores(oof)
        weights_kw = {} if weights is None else {"sample_weight": weights}
        self.slopes_ = np.zeros(len(self.classes_))
        self.intercepts_ = np.zeros(len(self.classes_))
        for index, label in enumerate(self.classes_):
            platt = LogisticRegression(C=1e4).fit(oof[:, [index]], labels == label, **weights_kw)
            self.slopes_[index] = float(platt.coef_[0, 0])
            self.intercepts_[index] = float(platt.intercept_[0])
        self.estimator_ = final
        self.out_of_fold_proba_ = self.calibrate(oof)
        return self

    @property
    def coef_(self) -> np.ndarray:
        """Per-class term weights (one row per class; a binary head's row 0 is the negated row 1)."""
        coef: np.ndarray = self.estimator_.coef_
        return np.vstack([-coef[0], coef[0]]) if coef.shape[0] == 1 else coef

    def decision_function(self, X: sparse.spmatrix) -> np.ndarray:
        return column_scores(self.estimator_.decision_function(X))

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        """Probabilities from decision scores (one column per class); the compiled path calls it too."""
        proba = 1.0 / (1.0 + np.exp(-(scores * self.slopes_ + self.intercepts_)))
        if len(self.classes_) == 2:
            proba[:, 0] = 1.0 - proba[:, 1]
        total = proba.sum(axis=1, keepdims=True)
        if total.all():  # the usual case: a plain division (the masked one costs four times as much per call)
            normalised: np.ndarray = proba / total
            return normalised
        return np.divide(proba, total, out=np.full_like(proba, 1.0 / len(self.classes_)), where=total > 0)

    def predict_proba(self, X: sparse.spmatrix) -> np.ndarray:
        return self.calibrate(self.decision_function(X))

    def predict(self, X: sparse.spmatrix) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
