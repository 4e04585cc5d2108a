"""Litigation (涉法涉诉) and collective (集体访) flags: one small classifier per flag, apart from the
routing model, so it can be trained, evaluated and replaced on its own.

Each flag is a balanced logistic regression (liblinear: ~5x faster than lbfgs here, the same average
precision) over the 50,000 most frequent character 1-3-grams (TF-IDF) of the prepared text;
its decision threshold is the one with the best F1 on out-of-fold probabilities of the training
data (never on the data used to report results). Persisted as plain arrays (`flags.npz`, loaded
with `allow_pickle=False`), so a flag file cannot run code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from model.compiled import NgramTable
from model.text import prepare_text

FLAGS_FILE = "flags.npz"
NGRAM_RANGE = (1, 3)


class Flag(StrEnum):
    """A flag's stable id (API, stored documents, corpus column), with what clerks read."""

    LITIGATION = "litigation"
    COLLECTIVE = "collective"

    @property
    def label(self) -> str:
        return FLAG_LABELS[self]

    @property
    def hint(self) -> str | None:
        """What the clerk should do about a flagged petition (None: nothing beyond noticing it)."""
        return FLAG_HINTS.get(self)


FLAG_LABELS = {Flag.LITIGATION: "涉法涉诉", Flag.COLLECTIVE: "集体访"}
FLAG_HINTS = {
    Flag.LITIGATION: (
        "诉访分离：引导信访人通过诉讼、复议、仲裁、申请执行等法定途径解决，并转政法部门审查（政法委/法院/司法局）"
    ),
}
# Corpus columns and manifest keys, in a fixed order.
FLAGS: tuple[str, ...] = tuple(flag.value for flag in Flag)


@dataclass(frozen=True)
class FlagScore:
    probability: float
    flagged: bool


def _best_f1_threshold(probabilities: NDArray[np.float64], truth: NDArray[np.bool_]) -> float:
    best, chosen = -1.0, 0.5
    for threshold in np.linspace(0.05, 0.95, 91):
        predicted = probabilities >= threshold
        true_positive = float(np.sum(predicted & truth))
        f1 = 2 * true_positive / max(1.0, float(predicted.sum() + truth.sum()))
        if f1 > best:
            best, chosen = f1, float(threshold)
    return chosen


class FlagModel:
    """Probabilities and yes/no decisions for each flag of `FLAGS` the training data carried."""

    def __init__(
        self,
        vocabulary: NDArray[np.str_],
        idf: NDArray[np.float64],
        weights: dict[str, tuple[NDArray[np.float64], float, float]],
    ) -> None:
        self.vocabulary = vocabulary
        self.idf = idf
        self.weights = weights  # flag -> (coefficients, intercept, threshold)
        # The prediction path: n-grams as integer keys (the routing model's compiled table), and each
        # flag's coefficients by column.
        self._table = NgramTable.build({str(term): index for index, term in enumerate(vocabulary)}, 0, NGRAM_RANGE)
        self._idf_coef = (
            np.column_stack([coef for coef, _, _ in weights.values()]) if weights else np.zeros((len(idf), 0))
        )
        self._intercepts = np.array([intercept for _, intercept, _ in weights.values()])

    @staticmethod
    def _new_vectorizer() -> TfidfVectorizer:
        return TfidfVectorizer(
            analyzer="char", ngram_range=NGRAM_RANGE, min_df=2, sublinear_tf=True, max_features=50_000
        )

    def _build_vectorizer(self) -> TfidfVectorizer:
        vectorizer = self._new_vectorizer()
        vectorizer.vocabulary_ = {str(term): index for index, term in enumerate(self.vocabulary)}
        vectorizer.idf_ = self.idf
        return vectorizer

    @property
    def names(self) -> list[str]:
        return list(self.weights)

    @property
    def thresholds(self) -> dict[str, float]:
        return {name: threshold for name, (_, _, threshold) in self.weights.items()}

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        labels: Mapping[str, Sequence[bool]],
        random_state: int = 0,
        thresholds: Mapping[str, float] | None = None,
    ) -> FlagModel:
        """Fit one classifier per flag with at least 5 examples either way. Thresholds are chosen on
        out-of-fold probabilities (5 more fits per flag) unless given (a refit on more rows keeps those
        chosen for the model that was evaluated)."""
        with threadpool_limits(1, user_api="blas"):
            return cls._fit(texts, labels, random_state, thresholds)

    @classmethod
    def _fit(
        cls,
        texts: Sequence[str],
        labels: Mapping[str, Sequence[bool]],
        random_state: int,
        thresholds: Mapping[str, float] | None,
    ) -> FlagModel:
        """`fit` with one BLAS thread. liblinear's logistic regression takes many small BLAS steps over the
        50,000 coefficients: on a busy 2-core machine two threads made them 15x slower (the threads spin
        waiting for each other), and the weights' last digits depend on the number of threads, that is
        on the machine. On one thread every machine fits the same flags."""
        vectorizer = cls._new_vectorizer()
        matrix = vectorizer.fit_transform([prepare_text(text) for text in texts])
        vocabulary = np.empty(len(vectorizer.vocabulary_), dtype=object)
        for term, index in vectorizer.vocabulary_.items():
            vocabulary[index] = term
        weights: dict[str, tuple[NDArray[np.float64], float, float]] = {}
        for name, values in labels.items():
            truth = np.asarray(values, dtype=bool)
            if truth.sum() < 5 or (~truth).sum() < 5:
                continue  # too few examples either way to learn or to choose a threshold
            classifier = LogisticRegression(C=4.0, class_weight="balanced", solver="liblinear")
            if thresholds is not None and name in thresholds:
                threshold = float(thresholds[name])
            else:
                folds = StratifiedKFold(5, shuffle=True, random_state=random_state)
                oof = cross_val_predict(classifier, matrix, truth, cv=folds, method="predict_proba")[:, 1]
                threshold = _best_f1_threshold(oof, truth)
            fitted = classifier.fit(matrix, truth)
            weights[name] = (fitted.coef_[0].astype(np.float64), float(fitted.intercept_[0]), threshold)
        return cls(vocabulary.astype(str), vectorizer.idf_.astype(np.float64), weights)

    def reference_probabilities(self, texts: Sequence[str]) -> dict[str, NDArray[np.float64]]:
        """Through scikit-learn's vectorizer: what `probabilities` must equal (the tests compare them).
        The vectorizer is built per call: only tests need it, and building it at every load cost time."""
        matrix = self._build_vectorizer().transform([prepare_text(text) for text in texts])
        return {
            name: 1.0 / (1.0 + np.exp(-(matrix @ coef + intercept)))
            for name, (coef, intercept, _) in self.weights.items()
        }

    def probabilities(self, texts: Sequence[str]) -> dict[str, NDArray[np.float64]]:
        """Each flag's probability per text. Computed directly from the n-gram counts (sublinear tf times
        idf, l2-normalised, dot the coefficients): the same numbers as the vectorizer without its
        per-call overhead, which cost more than the routing model on a single text."""
        decisions = np.array([self._decision(prepare_text(text)) for text in texts]).reshape(len(texts), -1)
        probabilities = 1.0 / (1.0 + np.exp(-(decisions + self._intercepts)))
        return {name: probabilities[:, column] for column, name in enumerate(self.weights)}

    def _decision(self, text: str) -> NDArray[np.float64]:
        columns, counts = np.unique(self._table.lookup(self._table.keys_of(text.lower())), return_counts=True)
        if not len(columns):
            return np.zeros(self._idf_coef.shape[1])
        values = (1.0 + np.log(counts)) * self.idf[columns]
        decision: NDArray[np.float64] = values @ self._idf_coef[columns] / np.sqrt(values @ values)
        return decision

    def predict(self, texts: Sequence[str]) -> list[dict[str, FlagScore]]:
        scores = self.probabilities(texts)
        return [
            {
                name: FlagScore(round(float(scores[name][row]), 4), bool(scores[name][row] >= self.weights[name][2]))
                for name in self.weights
            }
            for row in range(len(texts))
        ]

    def save(self, folder: Path) -> Path:
        path = folder / FLAGS_FILE
        arrays: dict[str, NDArray[np.generic]] = {"vocabulary": self.vocabulary, "idf": self.idf}
        for name, (coef, intercept, threshold) in self.weights.items():
            arrays[f"{name}__coef"] = coef
            arrays[f"{name}__bias"] = np.array([intercept, threshold])
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
        return path

    @classmethod
    def load(cls, folder: Path) -> FlagModel | None:
        """The flag model saved with a model version, or None when the version has none."""
        path = folder / FLAGS_FILE
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as arrays:
            weights = {
                name: (arrays[f"{name}__coef"], float(arrays[f"{name}__bias"][0]), float(arrays[f"{name}__bias"][1]))
                for name in FLAGS
                if f"{name}__coef" in arrays
            }
            return cls(arrays["vocabulary"], arrays["idf"], weights)
