"""The trained two-head model: calibrated outputs, abstention, explanations, held-out quality."""

from __future__ import annotations

import numpy as np
import pytest

from model.classifier import DEFAULT_DEPARTMENT_TARGET, DEFAULT_DOMAIN_TARGET, LabelError, TriageModel
from model.explanation import document_words, explainable
from model.heads import PlattLinearHead
from model.pairs import PAIR_PRIOR_GRID
from model.persistence import load_model
from model.taxonomy import load_taxonomy
from model.text import prepare_text
from model.tokenize import PetitionSegmenter
from training.dataset import load_corpus
from training.train import TrainResult


@pytest.fixture(scope="module")
def model(trained: TrainResult) -> TriageModel:
    return load_model(trained.folder)[0]


def test_probabilities_are_distributions_over_the_label_sets(model: TriageModel) -> None:
    texts = ["健身房老板跑路了，我的年卡还剩八个月", "孩子学校天天补课收钱"]
    for head, size in (("domain", 5), ("department", 15)):
        proba = model.predict_proba(texts, head)
        assert proba.shape == (2, size)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


def test_prediction_has_ranked_top3_departments_and_review_flag(model: TriageModel) -> None:
    prediction = model.predict(["我们小区开发商延期交房快两年了，两百多户业主要求赔偿违约金"])[0]
    assert prediction.heads["domain"].label == "real_estate"
    ranking = prediction.heads["department"].ranking
    assert len(ranking) == 3 and ranking[0][0] == "housing"
    assert [p for _, p in ranking] == sorted((p for _, p in ranking), reverse=True)
    head = prediction.heads["department"]
    assert head.needs_review == (head.confidence < model.thresholds_["department"])


def test_low_confidence_goes_to_review(model: TriageModel) -> None:
    vague = model.predict(["你好，我想问一下"])[0]
    assert vague.needs_review


def test_explanations_are_terms_of_the_masked_text(model: TriageModel) -> None:
    text = "A市C区某某健身会所突然关门，老板电话13912345678打不通，我办的储值卡还有5000元没用，要求退费"
    prediction = model.predict([text])[0]
    assert prediction.heads["domain"].label == "prepaid"
    terms = [term for term, _ in prediction.explanation]
    assert terms and all(term in prepare_text(text) for term in terms)
    assert all(weight > 0 for _, weight in prediction.explanation)
    assert "13912345678" not in "".join(terms)


def test_held_out_quality_on_the_fixed_split(trained: TrainResult) -> None:
    test = trained.manifest.metrics["test"]
    assert trained.manifest.training_data["test_rows"] > 400
    assert test["domain"]["macro_f1"] > 0.85
    assert test["department"]["top3_accuracy"] > 0.9
    assert test["domain"]["precision_at_threshold"] > 0.9


def test_thresholds_were_chosen_out_of_fold_for_the_target(trained: TrainResult) -> None:
    validation = trained.manifest.metrics["out_of_fold_train"]
    for head, target in (("domain", DEFAULT_DOMAIN_TARGET), ("department", DEFAULT_DEPARTMENT_TARGET)):
        assert validation[head]["target_precision"] == target
        assert validation[head]["precision_at_threshold"] >= validation[head]["target_precision"]
        assert 0 < trained.manifest.thresholds[head] <= 1


def test_the_shipped_model_is_refit_on_every_row_after_the_held_out_report(trained: TrainResult) -> None:
    rows = trained.manifest.training_data
    assert rows["shipped_model_rows"] == rows["rows"] == rows["train_rows"] + rows["test_rows"]


def test_joint_decoding_never_pairs_a_domain_with_a_department_that_does_not_own_such_work(
    model: TriageModel,
) -> None:
    corpus = load_corpus().subset("test")
    owners = load_taxonomy().domain_departments
    domains, departments = model.classes("domain"), model.classes("department")
    proba = model.head_probabilities(model.transform(corpus.texts[:300]))
    for domain_row, department_row in zip(proba["domain"], proba["department"], strict=True):
        assert departments[department_row.argmax()] in owners[domains[domain_row.argmax()]]


def test_joint_decoding_trades_a_weak_department_for_one_its_domain_owns() -> None:
    model = TriageModel()
    model.pairs_ = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # domain 0 owns departments 0 and 2
    domain = np.array([[0.9, 0.1]])
    department = np.array([[0.2, 0.45, 0.35]])  # alone, department 1 wins; domain 0 does not own it
    decoded = model._decode({"domain": domain, "department": department})
    assert decoded["department"][0].argmax() == 2 and decoded["domain"][0].argmax() == 0
    np.testing.assert_allclose(decoded["department"].sum(), 1.0)
    impossible = model._decode({"domain": np.array([[1.0, 0.0]]), "department": np.array([[0.0, 1.0, 0.0]])})
    np.testing.assert_array_equal(impossible["department"], [[0.0, 1.0, 0.0]])  # kept, not divided by zero


def test_training_is_deterministic_so_a_fresh_checkout_gets_the_same_model() -> None:
    corpus = load_corpus().subset("test")
    texts, targets = corpus.texts[:400], corpus.targets()[:400]
    first = TriageModel(calibration_folds=2).fit(texts, targets)
    second = TriageModel(calibration_folds=2).fit(texts, targets)
    assert first.thresholds_ == second.thresholds_
    np.testing.assert_array_equal(
        first.predict_proba(texts[:50], "department"), second.predict_proba(texts[:50], "department")
    )


def test_one_head_model_for_a_custom_label_set() -> None:
    corpus = load_corpus().subset("test")
    labels = ["money" if label in {"finance", "prepaid"} else "not_money" for label in corpus.labels]
    model = TriageModel(calibration_folds=2).fit(corpus.texts, labels)
    assert model.head_names_ == ["domain"] and model.classes("domain") == ["money", "not_money"]
    assert model.predict(["P2P平台暴雷，我投的二十万取不出来"])[0].heads["domain"].label == "money"


def test_fitting_again_replaces_everything_the_last_predictions_cached() -> None:
    corpus = load_corpus().subset("test")
    model = TriageModel(calibration_folds=2).fit(corpus.texts, corpus.labels)
    before = model.predict(["P2P平台暴雷，我投的二十万取不出来"])[0]
    assert before.heads["domain"].label == "finance" and before.explanation
    labels = ["money" if label in {"finance", "prepaid"} else "not_money" for label in corpus.labels]
    model.fit(corpus.texts, labels)
    after = model.predict(["P2P平台暴雷，我投的二十万取不出来"])[0]
    assert model.classes("domain") == ["money", "not_money"]
    assert after.heads["domain"].label == "money"
    fresh = TriageModel(calibration_folds=2).fit(corpus.texts, labels)
    assert after == fresh.predict(["P2P平台暴雷，我投的二十万取不出来"])[0]


def test_rare_labels_are_reported_by_name() -> None:
    with pytest.raises(LabelError, match="lonely"):
        TriageModel().fit(["甲乙丙丁", "戊己庚辛", "壬癸子丑"], ["a", "a", "lonely"])


def test_explanations_skip_fillers_fragments_and_placeholders(model: TriageModel) -> None:
    text = (
        "以后希望晚上不要再扣款了，我的银行卡号6222020200112233445被某理财平台冻结，"
        "商店办理的预付卡也退不了，老板跑路，请求追回投资款"
    )
    terms = [term for term, _ in model.predict([text])[0].explanation]
    assert terms
    words = document_words(text, PetitionSegmenter(model.segmenter))
    assert all(explainable(term, words) for term in terms)
    assert not {"以后", "希望", "晚上", "店办", "银行卡号", "卡号"} & set(terms)
    assert "银行" not in terms  # only inside the 【银行卡号】 placeholder here


def test_the_manifest_and_model_card_record_the_pair_weights_power(trained: TrainResult) -> None:
    power = trained.manifest.metrics["joint_decoding"]["pair_prior"]
    assert power in PAIR_PRIOR_GRID
    model, _ = load_model(trained.folder)
    assert model.pair_prior_ == power
    assert f"power {power}" in (trained.folder / "MODEL_CARD.md").read_text(encoding="utf-8")


def test_calibrated_rows_sum_to_one_and_a_row_whose_sigmoids_all_vanish_is_uniform() -> None:
    head = PlattLinearHead()
    head.classes_ = np.array(["a", "b", "c"])
    head.slopes_ = np.array([1.0, 2.0, 0.5])
    head.intercepts_ = np.array([0.0, -1.0, 0.3])
    usual = head.calibrate(np.array([[0.2, -0.4, 1.5], [3.0, 0.1, -2.0]]))
    np.testing.assert_allclose(usual.sum(axis=1), 1.0)
    sigmoids = 1.0 / (1.0 + np.exp(-(np.array([0.2, -0.4, 1.5]) * head.slopes_ + head.intercepts_)))
    np.testing.assert_array_equal(usual[0], sigmoids / sigmoids.sum())
    with np.errstate(over="ignore"):  # exp overflows: each sigmoid is exactly 0
        vanished = head.calibrate(np.array([[-2000.0, -2000.0, -5000.0], [0.2, -0.4, 1.5]]))
    np.testing.assert_array_equal(vanished[0], np.full(3, 1 / 3))  # every sigmoid underflows to 0
    np.testing.assert_array_equal(vanished[1], usual[0])  # the other row of the batch is untouched
