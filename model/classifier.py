"""The triage model: shared text features feeding calibrated linear heads, decoded jointly.

One head predicts the domain, an optional second head the responsible
department. Each head is a LinearSVC wrapped in cross-validated sigmoid
calibration; its weights give honest per-term explanations. With both heads,
the two distributions are decoded jointly over the (domain, department) pairs
seen in training, so a suggestion never pairs a domain with a department that
does not own such work (on the real-text dev set this raised department top-1
by about 1.5 points). Abstention thresholds are chosen on out-of-fold
predictions of the training data for a precision target per head; the targets
are strict because real petitions are harder than the hand-written corpus
(see `DEFAULT_TARGETS`).

Prediction runs on a compiled copy of the fitted pipeline (`model/compiled.py`), built on
first use: the same numbers without scikit-learn's per-call overhead. `compiled=False`
selects the scikit-learn path, the reference the tests compare against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse
from sklearn.base import BaseEstimator

from model.compiled import CompiledModel, CompileError, FeatureRows
from model.explanation import DocumentWords, document_words, explainable
from model.features import attach_vocabularies, build_features, detach_vocabularies
from model.flags import FlagScore
from model.heads import DEFAULT_C, PlattLinearHead
from model.pairs import choose_pair_prior, pair_counts, pair_weights
from model.thresholds import choose_threshold, coverage_precision
from model.tokenize import DEFAULT_SEGMENTER, PetitionSegmenter, Segmenter, check_segmenter

HEADS = ("domain", "department")
MIN_EXAMPLES_PER_LABEL = 2
# Out-of-fold precision targets on the training corpus. Corpus text is easier than real
# petitions: on the real-text dev set, a 0.95 target kept only ~0.81 of its promise, so the
# targets are set where the dev set's auto-routed precision holds 0.90 (department) and 0.95
# (domain) with room to spare for harder text: the department's 0.98 still keeps both halves of
# the promise (coverage >= 50%, precision >= 0.90) if ambiguous messages were 60% of the rows
# instead of the dev set's 30%, where 0.985 would route too few. `benchmarks/real_data.py` prints
# the curve, the sweep and the clear / ambiguous split that chose them.
DEFAULT_DOMAIN_TARGET = 0.985
DEFAULT_DEPARTMENT_TARGET = 0.98
# Attributes computed from the fitted model on first use. Never persisted, and dropped when the model is
# fitted again (a stale compiled path would keep predicting with the old weights).
_DERIVED = ("_feature_names", "_term_names", "_showable_columns", "_compiled", "_checked_segmenter", "_class_names")


@dataclass(frozen=True)
class HeadPrediction:
    label: str
    confidence: float
    ranking: list[tuple[str, float]]
    needs_review: bool


@dataclass(frozen=True)
class Prediction:
    heads: dict[str, HeadPrediction]
    explanation: list[tuple[str, float]] = field(default_factory=list)
    # Litigation / collective flags, when the model version has a flag model (model/flags.py).
    flags: dict[str, FlagScore] = field(default_factory=dict)

    @property
    def needs_review(self) -> bool:
        return any(head.needs_review for head in self.heads.values())


class LabelError(ValueError):
    """Training labels cannot support a calibrated, cross-validated head."""


def _folds(labels: np.ndarray, wanted: int) -> int:
    names, counts = np.unique(labels, return_counts=True)
    if counts.min() < MIN_EXAMPLES_PER_LABEL:
        rare = [str(name) for name, count in zip(names, counts, strict=True) if count < MIN_EXAMPLES_PER_LABEL]
        raise LabelError(f"labels with fewer than {MIN_EXAMPLES_PER_LABEL} examples: {', '.join(rare)}")
    if len(counts) < 2:
        raise LabelError("a head needs at least two distinct labels")
    return int(min(wanted, counts.min()))


class TriageModel(BaseEstimator):
    """Two-head petition classifier with calibrated probabilities, joint decoding and abstention.

    Parameters mirror the pieces they configure; `fit(X, y)` takes raw texts and
    `y` of shape (n,) for one head (domain) or (n, 2) for domain and department.
    """

    def __init__(
        self,
        C: float = DEFAULT_C,
        word_ngram_range: tuple[int, int] = (1, 1),
        char_ngram_range: tuple[int, int] = (1, 3),
        lead_tokens: int = 20,
        min_df: int = 2,
        calibration_folds: int = 5,
        domain_target_precision: float = DEFAULT_DOMAIN_TARGET,
        department_target_precision: float = DEFAULT_DEPARTMENT_TARGET,
        joint_decoding: bool = True,
        pair_prior: float | None = None,
        segmenter: str = DEFAULT_SEGMENTER.value,
        random_state: int = 0,
    ) -> None:
        self.C = C
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.lead_tokens = lead_tokens
        self.min_df = min_df
        self.calibration_folds = calibration_folds
        self.domain_target_precision = domain_target_precision
        self.department_target_precision = department_target_precision
        self.joint_decoding = joint_decoding
        self.pair_prior = pair_prior
        self.segmenter = segmenter
        self.random_state = random_state

    def _head(self, labels: np.ndarray) -> PlattLinearHead:
        return PlattLinearHead(C=self.C, folds=_folds(labels, self.calibration_folds), random_state=self.random_state)

    def _target(self, head: str) -> float:
        return self.domain_target_precision if head == "domain" else self.department_target_precision

    def fit(
        self,
        X: Sequence[str],
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        threshold_rows: ArrayLike | None = None,
        n_jobs: int | None = None,
    ) -> TriageModel:
        """Fit features, heads and thresholds.

        `sample_weight` weighs rows in every head fit (an office's own rows against the corpus);
        `threshold_rows` (a boolean mask) picks the rows whose out-of-fold predictions choose the
        thresholds, so the auto-routing promise is measured on the text it will be used on.
        `n_jobs` processes fit each head's LinearSVCs (`PlattLinearHead.fit`): the same model, sooner.
        """
        for name in _DERIVED:
            self.__dict__.pop(name, None)
        targets = np.asarray(y, dtype=object)
        if targets.ndim == 1:
            targets = targets[:, None]
        if targets.shape[0] != len(X):
            raise ValueError(f"{len(X)} texts but {targets.shape[0]} label rows")
        self.head_names_ = list(HEADS[: targets.shape[1]])
        labels = {name: targets[:, index].astype(str) for index, name in enumerate(self.head_names_)}
        for values in labels.values():
            _folds(values, self.calibration_folds)  # fail before the costly part
        self.features_ = build_features(
            word_ngram_range=self.word_ngram_range,
            char_ngram_range=self.char_ngram_range,
            lead_tokens=self.lead_tokens,
            min_df=self.min_df,
            segmenter=self.segmenter,
        )
        matrix = self.features_.fit_transform(list(X))
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        chosen = np.ones(len(X), dtype=bool) if threshold_rows is None else np.asarray(threshold_rows, dtype=bool)
        self.heads_: dict[str, PlattLinearHead] = {
            name: self._head(values).fit(matrix, values, weights, n_jobs) for name, values in labels.items()
        }
        raw_out_of_fold = {name: head.out_of_fold_proba_ for name, head in self.heads_.items()}
        self.pair_prior_, self.pairs_ = self._pair_weights(labels, raw_out_of_fold, weights)
        # Thresholds come from out-of-fold predictions, decoded exactly as at prediction time.
        out_of_fold = self._decode(raw_out_of_fold)
        self.thresholds_: dict[str, float] = {}
        self.validation_: dict[str, dict[str, float]] = {}
        for name, values in labels.items():
            classes = self.heads_[name].classes_
            confidence = out_of_fold[name][chosen].max(axis=1)
            correct = classes[out_of_fold[name][chosen].argmax(axis=1)] == values[chosen]
            threshold = choose_threshold(confidence, correct, self._target(name))
            coverage, precision = coverage_precision(confidence, correct, threshold)
            self.thresholds_[name] = threshold
            self.validation_[name] = {
                "out_of_fold_accuracy": float(correct.mean()),
                "target_precision": self._target(name),
                "coverage_at_threshold": coverage,
                "precision_at_threshold": precision,
            }
        for head in self.heads_.values():
            del head.out_of_fold_proba_  # training-time only; not persisted
        return self

    def _pair_weights(
        self, labels: dict[str, np.ndarray], out_of_fold: dict[str, np.ndarray], weights: np.ndarray | None
    ) -> tuple[float | None, np.ndarray | None]:
        """The power used and the (domain x department) weights of joint decoding (model/pairs.py): zero for
        pairs never seen in training; (None, None) with one head or no joint decoding."""
        if not self.joint_decoding or len(labels) < 2:
            return None, None
        domain_classes, department_classes = self.heads_["domain"].classes_, self.heads_["department"].classes_
        domains = np.searchsorted(domain_classes, labels["domain"])
        departments = np.searchsorted(department_classes, labels["department"])
        counts = pair_counts(domains, departments, (len(domain_classes), len(department_classes)), weights)
        power = (
            choose_pair_prior(out_of_fold["domain"], out_of_fold["department"], (domains, departments), counts, weights)
            if self.pair_prior is None
            else float(self.pair_prior)
        )
        return power, pair_weights(counts, power)

    def _decode(self, proba: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Joint decoding: P(d, p) proportional to P(d) P(p) w(d, p) over pairs seen in training (`pairs_`,
        model/pairs.py), then both marginals.

        A row whose two heads agree on no observed pair keeps its independent probabilities.
        """
        pairs = getattr(self, "pairs_", None)
        if pairs is None or "department" not in proba:
            return proba
        joint = proba["domain"][:, :, None] * proba["department"][:, None, :] * pairs[None]
        total = joint.sum(axis=(1, 2))
        decodable = total > 0
        decoded = {name: values.copy() for name, values in proba.items()}
        joint = joint[decodable] / total[decodable, None, None]
        decoded["domain"][decodable] = joint.sum(axis=2)
        decoded["department"][decodable] = joint.sum(axis=1)
        return decoded

    def head_probabilities(
        self, matrix: sparse.csr_matrix | FeatureRows, compiled: bool = True
    ) -> dict[str, np.ndarray]:
        """Decoded class probabilities of every head for feature rows (columns in `classes(head)` order)."""
        fast = self.compiled() if compiled else None
        if fast is not None:
            return self._decode(fast.heads.probabilities(matrix))
        rows = matrix.to_csr() if isinstance(matrix, FeatureRows) else matrix
        return self._decode({name: head.predict_proba(rows) for name, head in self.heads_.items()})

    @property
    def trained_segmenter(self) -> Segmenter:
        """The segmenter the fitted vocabularies were built with (recorded in the model file)."""
        return Segmenter(self.features_.named_steps["tokens"].segmenter)

    def compiled(self) -> CompiledModel | None:
        """The compiled prediction path, built once; None if the pipeline uses an option it cannot reproduce."""
        # A changed setting must not pass silently; checked again whenever `segmenter` changes, not per call
        # (a prediction asks for the compiled path four times, and each check reads the pipeline's steps again).
        if self.__dict__.get("_checked_segmenter") != self.segmenter:
            check_segmenter(self.trained_segmenter, self.segmenter)
            self._checked_segmenter = self.segmenter
        if "_compiled" not in self.__dict__:
            try:
                self._compiled: CompiledModel | None = CompiledModel.build(self.features_, self.heads_)
            except CompileError:
                self._compiled = None
        return self._compiled

    def __getstate__(self) -> dict[str, object]:
        """Vocabularies travel as term arrays: persisted dicts of ~10^5 entries make loading slow."""
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns the live __dict__
        for name in _DERIVED:  # rebuilt from the fitted pipeline on first use
            state.pop(name, None)
        if "features_" in state:
            state["features_"], state["vocabularies_"] = detach_vocabularies(state["features_"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        vocabularies = state.pop("vocabularies_", None)
        state.setdefault("segmenter", Segmenter.JIEBA.value)  # model files from before the setting
        state.setdefault("pair_prior", 0.0)  # ... and from before pair weights (a seen/unseen mask is power 0)
        state.setdefault("pair_prior_", 0.0 if state.get("pairs_") is not None else None)
        super().__setstate__(state)
        if vocabularies is not None:
            attach_vocabularies(self.features_, vocabularies)

    def feature_names(self) -> np.ndarray:
        if getattr(self, "_feature_names", None) is None:
            self._feature_names = self.features_.named_steps["tfidf"].get_feature_names_out()
        return self._feature_names

    def classes(self, head: str) -> list[str]:
        """The head's labels in column order (a copy: the cached list is built once, not per prediction)."""
        if "_class_names" not in self.__dict__:
            self._class_names = {name: [str(label) for label in head.classes_] for name, head in self.heads_.items()}
        return list(self._class_names[head])

    def transform(self, X: Sequence[str], compiled: bool = True) -> sparse.csr_matrix:
        fast = self.compiled() if compiled else None
        if fast is not None:
            return fast.features.transform(list(X))
        check_segmenter(self.trained_segmenter, self.segmenter)
        return self.features_.transform(list(X))

    def predict_proba(self, X: Sequence[str], head: str = "domain", compiled: bool = True) -> np.ndarray:
        return self.head_probabilities(self.transform(X, compiled), compiled)[head]

    def _terms(self) -> np.ndarray:
        """The term of every feature column, without the vectoriser prefix."""
        fast = self.compiled()
        if fast is not None:
            return fast.features.terms
        if getattr(self, "_term_names", None) is None:
            self._term_names = np.array([name.split("__", 1)[1] for name in self.feature_names()], dtype=object)
        return self._term_names

    def _showable(self) -> np.ndarray:
        """Per feature column: could its term ever be shown as a key word (`explainable` without a document)?

        Computed once: most of a document's strongest columns are single characters, fillers and marker
        tokens, and checking them one by one per request cost a tenth of a prediction."""
        if getattr(self, "_showable_columns", None) is None:
            terms = self._terms()
            self._showable_columns = np.fromiter(
                (explainable(str(term), None) for term in terms), dtype=bool, count=len(terms)
            )
        return self._showable_columns

    def _term_weights(self, head: str, label: str, columns: np.ndarray) -> np.ndarray:
        """The weights of `columns` toward `label` in the head's LinearSVC (each class's sigmoid is monotone
        in its score). Read from the compiled heads when there are any: a prediction has just read those
        rows for its scores, so they are in the CPU cache, while `coef_` is a second large array."""
        index = self.classes(head).index(label)
        fast = self.compiled()
        if fast is not None:
            return fast.heads.term_weights(head, index, columns)
        weights: np.ndarray = self.heads_[head].coef_[index][columns]
        return weights

    def explain(
        self, row: sparse.csr_matrix, head: str, label: str, top: int = 8, text: str | None = None
    ) -> list[tuple[str, float]]:
        """Terms of one document that pushed it most toward `label`, strongest first; with the document's
        `text`, only terms a person can read as key words (model/explanation.py)."""
        row = row.tocsr()
        return self._explain(row.indices, row.data, head, label, top, self._words(text))

    def _words(self, text: str | None) -> DocumentWords | None:
        return None if text is None else document_words(text, PetitionSegmenter(self.segmenter))

    def _explain(
        self,
        indices: np.ndarray,
        values: np.ndarray,
        head: str,
        label: str,
        top: int = 8,
        words: DocumentWords | None = None,
    ) -> list[tuple[str, float]]:
        contributions = values * self._term_weights(head, label, indices)
        candidates = np.flatnonzero((contributions > 0) & self._showable()[indices])
        order = candidates[np.argsort(-contributions[candidates], kind="stable")]
        names = self._terms()
        terms: list[tuple[str, float]] = []
        seen: set[str] = set()
        for position in order:
            if len(terms) >= top:
                break
            term = str(names[indices[position]])
            if not explainable(term, words) or any(term in kept for kept in seen):
                continue
            seen.add(term)
            terms.append((term, round(float(contributions[position]), 4)))
        return terms

    def predict(self, X: Sequence[str], explain: bool = True, top: int = 3, compiled: bool = True) -> list[Prediction]:
        """Predictions for a batch; explanations are optional because batch jobs rarely need them."""
        fast = self.compiled() if compiled and explain else None
        words: list[DocumentWords] | None = None
        matrix: sparse.csr_matrix | FeatureRows
        if fast is not None:  # one segmentation per text for the features and the key-word filter
            documents, words = fast.features.tokens_and_words(X)
            matrix = fast.features.rows(documents)
        else:
            matrix = self.transform(X, compiled)
        per_head = self.head_probabilities(matrix, compiled)
        classes = {name: self.classes(name) for name in per_head}
        results: list[Prediction] = []
        for row_index in range(matrix.shape[0]):
            heads: dict[str, HeadPrediction] = {}
            for name, proba in per_head.items():
                order = np.argsort(-proba[row_index])[:top]
                ranking = [(classes[name][i], round(float(proba[row_index, i]), 4)) for i in order]
                confidence = float(proba[row_index, order[0]])
                heads[name] = HeadPrediction(
                    ranking[0][0], round(confidence, 4), ranking, confidence < self.thresholds_[name]
                )
            explanation = []
            if explain:
                cells = slice(matrix.indptr[row_index], matrix.indptr[row_index + 1])
                explanation = self._explain(
                    matrix.indices[cells],
                    matrix.data[cells],
                    "domain",
                    heads["domain"].label,
                    words=words[row_index] if words is not None else self._words(X[row_index]),
                )
            results.append(Prediction(heads, explanation))
        return results
