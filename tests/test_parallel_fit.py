"""Fitting in worker processes (`n_jobs`) must give exactly the model one process gives.

The recorded real-text figures are matched to a model by its training data and parameters, which
only holds if how fast a model was fitted never changes what it learned.
"""

from __future__ import annotations

import multiprocessing
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from model.classifier import TriageModel
from model.features import build_features
from model.flags import FlagModel
from model.heads import DEFAULT_C, PlattLinearHead, column_scores
from model.persistence import MODEL_FILE, save_model
from training.dataset import load_corpus
from training.flags import flags_alongside


@pytest.fixture(scope="module")
def rows() -> tuple[list[str], np.ndarray, np.ndarray]:
    corpus = load_corpus().subset("test")
    texts, targets = corpus.texts[:360], np.asarray(corpus.targets()[:360], dtype=object)
    weights = np.where(np.arange(len(texts)) % 3 == 0, 2.0, 1.0)  # an office's rows weighed against the corpus
    return texts, targets, weights


def test_head_gives_cross_val_predict_scores_and_a_fit_on_every_row(
    rows: tuple[list[str], np.ndarray, np.ndarray],
) -> None:
    """The head runs its folds itself (so they can run in parallel): the numbers scikit-learn's helper gives."""
    texts, targets, weights = rows
    matrix = build_features(min_df=2).fit_transform(texts)
    for labels in (targets[:, 1].astype(str), np.where(targets[:, 0] == "prepaid", "prepaid", "other")):
        head = PlattLinearHead(folds=3).fit(matrix, labels, weights)
        reference = column_scores(
            cross_val_predict(
                LinearSVC(C=DEFAULT_C, random_state=0),
                matrix,
                labels,
                cv=StratifiedKFold(3, shuffle=True, random_state=0),
                method="decision_function",
                params={"sample_weight": weights},
            )
        )
        np.testing.assert_array_equal(head.out_of_fold_proba_, head.calibrate(reference))
        final = LinearSVC(C=DEFAULT_C, random_state=0).fit(matrix, labels, sample_weight=weights)
        np.testing.assert_array_equal(head.estimator_.coef_, final.coef_)
        np.testing.assert_array_equal(head.estimator_.intercept_, final.intercept_)


@pytest.mark.slow  # worker processes
def test_parallel_fit_gives_the_sequential_model_byte_for_byte(
    rows: tuple[list[str], np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    texts, targets, weights = rows
    office = np.arange(len(texts)) % 3 == 0
    fits = {
        jobs: TriageModel(calibration_folds=3).fit(
            texts, targets, sample_weight=weights, threshold_rows=office, n_jobs=jobs
        )
        for jobs in (1, 2)
    }
    sequential, parallel = fits[1], fits[2]
    assert parallel.thresholds_ == sequential.thresholds_
    assert parallel.validation_ == sequential.validation_
    for name, head in sequential.heads_.items():
        np.testing.assert_array_equal(parallel.heads_[name].slopes_, head.slopes_)
        np.testing.assert_array_equal(parallel.heads_[name].intercepts_, head.intercepts_)
        np.testing.assert_array_equal(parallel.heads_[name].coef_, head.coef_)
        np.testing.assert_array_equal(
            parallel.predict_proba(texts, name, compiled=False), sequential.predict_proba(texts, name, compiled=False)
        )
    assert saved_content(parallel, tmp_path / "parallel") == saved_content(sequential, tmp_path / "sequential")


def saved_content(model: TriageModel, folder: Path) -> tuple[list[bytes], str]:
    """The model file's arrays and schema. skops names entries by object id, which differs between any two
    saves, so the ids are masked; everything else must match byte for byte."""
    save_model(model, folder)
    with zipfile.ZipFile(folder / MODEL_FILE) as archive:
        arrays = sorted(archive.read(name) for name in archive.namelist() if name != "schema.json")
        schema = archive.read("schema.json").decode()
    return arrays, re.sub(r'"__id__": \d+|"\d+\.npy"', "ID", schema)


def test_flags_are_the_same_whatever_blas_threads_the_machine_has() -> None:
    """On several BLAS threads liblinear's logistic regression ends in other last digits (and runs slower)."""
    corpus = load_corpus().subset("test")
    assert corpus.flags is not None
    texts, flags = corpus.texts[:300], {name: values[:300] for name, values in corpus.flags.items()}
    fitted = []
    for threads in (1, 2):
        with threadpool_limits(threads, user_api="blas"):
            fitted.append(FlagModel.fit(texts, flags))
    one, two = fitted
    assert one.names == two.names == ["litigation", "collective"]
    for name, (coef, intercept, threshold) in one.weights.items():
        np.testing.assert_array_equal(two.weights[name][0], coef)
        assert two.weights[name][1:] == (intercept, threshold)


@pytest.mark.slow  # a spawned process
def test_flags_fitted_alongside_in_their_own_process_are_the_same() -> None:
    corpus = load_corpus().subset("test")
    data = corpus.select(list(range(400)))
    train, test = data.select(list(range(300))), data.select(list(range(300, 400)))
    results = []
    for jobs in (1, 2):
        with flags_alongside(jobs, data, train, test, None) as result:
            results.append(result())
    here, apart = results
    assert here is not None and apart is not None
    assert (apart.source, apart.train_rows, apart.shipped_rows) == (here.source, 300, 400)
    assert apart.held_out == here.held_out and apart.model.thresholds == here.model.thresholds
    for name, (coef, intercept, _) in here.model.weights.items():
        np.testing.assert_array_equal(apart.model.weights[name][0], coef)
        assert apart.model.weights[name][1] == intercept


@pytest.mark.slow  # a spawned process
def test_a_failed_run_stops_the_flag_process_and_says_why() -> None:
    corpus = load_corpus().subset("test")
    before = set(multiprocessing.active_children())  # e.g. joblib's reusable workers from other tests
    with pytest.raises(RuntimeError, match="routing fit failed"), flags_alongside(2, corpus, corpus, corpus, None):
        assert set(multiprocessing.active_children()) - before  # the flag process runs
        raise RuntimeError("the routing fit failed")
    assert set(multiprocessing.active_children()) <= before
