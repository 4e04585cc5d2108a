"""A linear head with Platt-scaled probabilities, fitted once with its own out-of-fold scores.

Equivalent to scikit-learn's `CalibratedClassifierCV(LinearSVC(), method="sigmoid",
ensemble=False)`: the sigmoids are fitted on out-of-fold decision scores and the
LinearSVC on every row. Doing it by hand keeps those out-of-fold scores, so the
abstention thresholds come from the same folds instead of a second, nested
cross-validation (six fits per head instead of thirty-six), and the fitted head is
three plain arrays that load fast and predict without per-call overhead.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.svm import LinearSVC


def column_scores(scores: np.ndarray) -> np.ndarray:
    """Decision scores as one column per class (a binary LinearSVC gives one column for class 1)."""
    return np.column_stack([-scores, scores]) if scores.ndim == 1 else scores


class PlattLinearHead(ClassifierMixin, BaseEstimator):
    """LinearSVC ranking, per-class sigmoid probabilities normalised to sum to one."""

    def __init__(self, C: float = 2.0, folds: int = 5, random_state: int = 0) -> None:
        self.C = C
        self.folds = folds
        self.random_state = random_state

    def fit(self, X: sparse.spmatrix, y: np.ndarray, sample_weight: np.ndarray | None = None) -> PlattLinearHead:
        """`sample_weight` weighs rows in the LinearSVC fits and in the sigmoid fits alike."""
        labels = np.asarray(y).astype(str)
        self.classes_ = np.unique(labels)
        splitter = StratifiedKFold(self.folds, shuffle=True, random_state=self.random_state)
        weights = {} if sample_weight is None else {"sample_weight": sample_weight}
        oof = column_scores(
            cross_val_predict(
                LinearSVC(C=self.C, random_state=self.random_state),
                X,
                labels,
                cv=splitter,
                method="decision_function",
                params=weights,
            )
        )
        self.slopes_ = np.zeros(len(self.classes_))
        self.intercepts_ = np.zeros(len(self.classes_))
        for index, label in enumerate(self.classes_):
            platt = LogisticRegression(C=1e4).fit(oof[:, [index]], labels == label, **weights)
            self.slopes_[index] = float(platt.coef_[0, 0])
            self.intercepts_[index] = float(platt.intercept_[0])
        self.estimator_ = LinearSVC(C=self.C, random_state=self.random_state).fit(X, labels, **weights)
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
        return np.divide(proba, total, out=np.full_like(proba, 1.0 / len(self.classes_)), where=total > 0)

    def predict_proba(self, X: sparse.spmatrix) -> np.ndarray:
        return self.calibrate(self.decision_function(X))

    def predict(self, X: sparse.spmatrix) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
