"""Mixing an office's own labelled history with the built-in corpus.

Measured on real messages, the corpus plus an office's rows beats either alone (the corpus keeps
the domains an office rarely sees; the office's rows teach its own wording and routing habits).
The office's rows carry a weight against the corpus rows: 1 by default. Cross-validation on the
office's rows (`--office-weight auto`) is kept as an option, but on real messages every candidate
scored the same to three decimals (600 and 5,000 office rows: the TF-IDF rows are separable at
C=2, so up-weighting them moves nothing) while it cost 14.5 of the 20 minutes of a 5,000-row run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.svm import LinearSVC

from model.features import build_features
from model.heads import DEFAULT_C
from model.tokenize import DEFAULT_SEGMENTER
from training.dataset import LabelledData, last_rows, row_key

DEFAULT_OFFICE_WEIGHT = 1.0
WEIGHT_CANDIDATES = (1.0, 2.0, 4.0, 8.0)
WEIGHT_FOLDS = 3
# Below this many office rows three folds say nothing reliable: the default is used.
MIN_ROWS_TO_CHOOSE = 30


class WeightSource(StrEnum):
    GIVEN = "given"  # the default or --office-weight W
    TOO_FEW_ROWS = "too_few_rows"  # --office-weight auto, but too few office rows to cross-validate
    CROSS_VALIDATED = "cross_validated"  # --office-weight auto


@dataclass(frozen=True)
class WeightChoice:
    """The office-row weight, how it was set, and the cross-validated score (mean head accuracy) of each
    candidate when it was chosen that way."""

    weight: float
    source: WeightSource = WeightSource.GIVEN
    scores: dict[float, float] | None = None
    folds: int = 0

    def describe(self) -> str:
        if self.source == WeightSource.GIVEN:
            return f"{self.weight:g} (指定 / given; --office-weight auto chooses it by cross-validation)"
        if self.source == WeightSource.TOO_FEW_ROWS or not self.scores:
            return f"{self.weight:g} (默认 / default: too few office rows to cross-validate)"
        tried = ", ".join(f"{weight:g}: {score:.3f}" for weight, score in self.scores.items())
        return f"{self.weight:g} ({self.folds}-fold CV on the office rows, mean head accuracy {tried})"


@dataclass(frozen=True)
class Mix:
    """Training rows of one fit: corpus rows first, then the office's, with weights and threshold rows."""

    texts: list[str]
    targets: list[list[str]] | list[str]
    sample_weight: np.ndarray
    threshold_rows: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)


def concat(first: LabelledData, second: LabelledData) -> LabelledData:
    """Rows of both; department labels only if both have them."""
    both = first.departments is not None and second.departments is not None
    return LabelledData(
        texts=first.texts + second.texts,
        labels=first.labels + second.labels,
        departments=(first.departments or []) + (second.departments or []) if both else None,
        splits=first.splits + second.splits,
        sources=first.sources + [source for source in second.sources if source not in first.sources],
    )


def mix(corpus: LabelledData | None, office: LabelledData, weight: float) -> Mix:
    """The office rows (weighted) after the corpus rows; thresholds are chosen on the office rows only."""
    rows = office if corpus is None else concat(corpus, office)
    extra = 0 if corpus is None else len(corpus)
    return Mix(
        texts=rows.texts,
        targets=rows.targets(),
        sample_weight=np.concatenate([np.ones(extra), np.full(len(office), float(weight))]),
        threshold_rows=np.concatenate([np.zeros(extra, dtype=bool), np.ones(len(office), dtype=bool)]),
    )


def _fold_scores(
    matrix: sparse.csr_matrix,
    heads: dict[str, np.ndarray],
    corpus_rows: int,
    train: np.ndarray,
    test: np.ndarray,
    weight: float,
    C: float,
) -> float:
    """Mean accuracy over heads on office rows `test` of a LinearSVC fitted on the corpus and office rows `train`."""
    rows = np.concatenate([np.arange(corpus_rows), corpus_rows + train])
    sample_weight = np.concatenate([np.ones(corpus_rows), np.full(len(train), weight)])
    scores = []
    for labels in heads.values():
        classifier = LinearSVC(C=C, random_state=0).fit(matrix[rows], labels[rows], sample_weight=sample_weight)
        scores.append(float((classifier.predict(matrix[corpus_rows + test]) == labels[corpus_rows + test]).mean()))
    return float(np.mean(scores))


def choose_office_weight(
    corpus: LabelledData,
    office: LabelledData,
    C: float = DEFAULT_C,
    segmenter: str = DEFAULT_SEGMENTER.value,
    candidates: Sequence[float] = WEIGHT_CANDIDATES,
    folds: int = WEIGHT_FOLDS,
    jobs: int = -1,
) -> WeightChoice:
    """The candidate weight whose fits score best on held-out office rows (k folds, corpus always in training).

    Features are fitted once on all rows (cheap, and the same for every candidate); each candidate then
    costs one LinearSVC fit per head and fold.
    """
    if len(office) < MIN_ROWS_TO_CHOOSE:
        return WeightChoice(DEFAULT_OFFICE_WEIGHT, WeightSource.TOO_FEW_ROWS)
    both = concat(corpus, office)
    matrix = build_features(segmenter=segmenter, min_df=2).fit_transform(both.texts)
    heads = {name: np.asarray(labels) for name, labels in both.head_labels().items()}
    stratify = np.asarray(office.departments if office.departments is not None else office.labels)
    _, counts = np.unique(stratify, return_counts=True)
    splitter = (
        StratifiedKFold(folds, shuffle=True, random_state=0)
        if counts.min() >= folds
        else KFold(folds, shuffle=True, random_state=0)
    )
    splits = list(splitter.split(np.zeros(len(office)), stratify))
    jobs_list = [(weight, train, test) for weight in candidates for train, test in splits]
    results = Parallel(n_jobs=jobs)(
        delayed(_fold_scores)(matrix, heads, len(corpus), train, test, weight, C) for weight, train, test in jobs_list
    )
    scores = {
        float(weight): float(
            np.mean([score for (w, _, _), score in zip(jobs_list, results, strict=True) if w == weight])
        )
        for weight in candidates
    }
    best = max(scores, key=lambda weight: (scores[weight], -weight))  # ties go to the smaller weight
    return WeightChoice(best, WeightSource.CROSS_VALIDATED, scores, len(splits))


@dataclass(frozen=True)
class FeedbackMerge:
    """How clerks' decisions joined the office rows: added, office rows they relabelled, repeats dropped."""

    added: int
    replaced_office_rows: int
    repeated_decisions: int


def merge_feedback(office: LabelledData | None, feedback: LabelledData) -> tuple[LabelledData, FeedbackMerge]:
    """Office rows plus the clerks' decisions; the last decision on a text wins over earlier ones and the file.

    Texts are compared after masking and normalisation, so a decision (stored masked) matches the
    office row it came from.
    """
    latest = last_rows(feedback.texts)
    decisions = feedback.select(sorted(latest.values()))
    if office is None:
        return decisions, FeedbackMerge(len(decisions), 0, len(feedback) - len(decisions))
    kept = [index for index, text in enumerate(office.texts) if row_key(text) not in latest]
    merged = concat(office.select(kept), decisions)
    return merged, FeedbackMerge(len(decisions), len(office) - len(kept), len(feedback) - len(decisions))
