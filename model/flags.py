"""Litigation (涉法涉诉) and collective (集体访) flags: one small classifier per flag, apart from the
routing model, so it can be trained, evaluated and replaced on its own.

Each flag is a balanced logistic regression over character 1-3-gram TF-IDF of the prepared text;
its decision threshold is the one with the best F1 on out-of-fold probabilities of the training
data (never on the data used to report results). Persisted as plain arrays (`flags.npz`, loaded
with `allow_pickle=False`), so a flag file cannot run code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from model.text import prepare_text

FLAGS = ("litigation", "collective")
FLAGS_FILE = "flags.npz"


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
        self._vectorizer = self._build_vectorizer()

    @staticmethod
    def _new_vectorizer() -> TfidfVectorizer:
        return TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, max_features=200_000)

    def _build_vectorizer(self) -> TfidfVectorizer:
        vectorizer = self._new_vectorizer()
        vectorizer.vocabulary_ = {str(term): index for index, term in enumerate(self.vocabulary)}
        vectorizer.idf_ = self.idf
        return vectorizer

    @property
    def names(self) -> list[str]:
        return list(self.weights)

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Mapping[str, Sequence[bool]], random_state: int = 0) -> FlagModel:
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
            classifier = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)
            folds = StratifiedKFold(5, shuffle=True, random_state=random_state)
            oof = cross_val_predict(classifier, matrix, truth, cv=folds, method="predict_proba")[:, 1]
            fitted = classifier.fit(matrix, truth)
            weights[name] = (
                fitted.coef_[0].astype(np.float64),
                float(fitted.intercept_[0]),
                _best_f1_threshold(oof, truth),
            )
        return cls(vocabulary.astype(str), vectorizer.idf_.astype(np.float64), weights)

    def probabilities(self, texts: Sequence[str]) -> dict[str, NDArray[np.float64]]:
        matrix = self._vectorizer.transform([prepare_text(text) for text in texts])
        return {
            name: 1.0 / (1.0 + np.exp(-(matrix @ coef + intercept)))
            for name, (coef, intercept, _) in self.weights.items()
        }

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
