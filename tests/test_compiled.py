"""The compiled prediction path reproduces the scikit-learn pipeline exactly."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from model.classifier import TriageModel
from model.compiled import CompiledFeatures, CompiledHeads, CompileError, NgramTable, code_points, ngram_keys
from model.explanation import document_words, tokens_and_words
from model.features import build_features
from model.heads import PlattLinearHead
from model.persistence import ModelLoadError, load_model
from model.text import prepare_text
from model.tokenize import PetitionSegmenter, Segmenter, SegmenterMismatchError
from training.dataset import load_corpus
from training.train import TrainResult


def test_ngram_keys_are_unique_per_ngram_and_length() -> None:
    keys = ngram_keys(code_points("交房交房"), 1, 3)
    # 4 unigrams (2 distinct), 3 bigrams (2 distinct: 交房, 房交), 2 trigrams (2 distinct)
    assert len(keys) == 9 and len(set(keys.tolist())) == 6
    assert len(ngram_keys(code_points("交"), 2, 3)) == 0


def test_the_ngram_table_finds_exactly_the_vocabulary_ngrams() -> None:
    texts = [" ".join(text.split()) for text in load_corpus().texts[:1200]]  # no whitespace runs to collapse
    vocabulary: dict[str, int] = {}
    for text in texts[:600]:
        for gram in _ngrams(text):
            vocabulary.setdefault(gram, len(vocabulary))
    table = NgramTable.build(vocabulary, 5, (1, 3))
    for text in texts[600:]:
        keys = table.keys_of(text)
        found = sorted(table.lookup(keys).tolist())
        wanted = sorted(vocabulary[gram] + 5 for gram in _ngrams(text) if gram in vocabulary)
        assert found == wanted
    empty = NgramTable.build({}, 0, (1, 3))
    assert empty.lookup(empty.keys_of("交房")).tolist() == []


def _ngrams(text: str) -> list[str]:
    return [text[i : i + n] for n in (1, 2, 3) for i in range(len(text) - n + 1)]


@pytest.mark.parametrize(
    "params",
    [
        {"min_df": 2},
        {"min_df": 1, "word_ngram_range": (1, 2), "char_ngram_range": (2, 3), "lead_tokens": 5, "segmenter": "rjieba"},
    ],
)
@pytest.mark.parametrize("raw_counts", [(), ("char",)])
def test_compiled_features_equal_the_fitted_pipeline_bit_for_bit(
    params: dict[str, Any], raw_counts: tuple[str, ...]
) -> None:
    data = load_corpus()
    train, test = data.subset("train"), data.subset("test")
    features = build_features(**params)
    features.set_params(**{f"tfidf__{name}__sublinear_tf": False for name in raw_counts})
    features.fit(train.texts[:600])
    texts = [*test.texts[:300], "", "！！", "  ", "ａｂｃ  全角\u3000空格 x\ty"]
    reference = features.transform(texts)
    reference.sort_indices()
    compiled = CompiledFeatures.build(features)
    # A batch, and one text at a time (a single petition takes its own path through `rows`).
    for rows, expected in [(compiled.transform(texts), reference)] + [
        (compiled.transform([text]), reference[index]) for index, text in enumerate(texts[:20])
    ]:
        assert rows.shape == expected.shape
        np.testing.assert_array_equal(rows.indptr, expected.indptr)
        np.testing.assert_array_equal(rows.indices, expected.indices)
        np.testing.assert_array_equal(rows.data, expected.data)


def test_options_the_compiled_path_does_not_reproduce_are_refused() -> None:
    features = build_features(char_ngram_range=(1, 4)).fit(load_corpus().texts[:50])
    with pytest.raises(CompileError, match="longer than 3"):
        CompiledFeatures.build(features)


@pytest.fixture(scope="module")
def model(trained: TrainResult) -> TriageModel:
    return load_model(trained.folder)[0]


def test_compiled_predictions_match_the_scikit_learn_path_on_the_test_split(model: TriageModel) -> None:
    assert model.compiled() is not None
    texts = [*load_corpus().subset("test").texts, *PERSONAL]
    compiled_matrix, reference_matrix = model.transform(texts), model.transform(texts, compiled=False)
    compiled = model.head_probabilities(compiled_matrix)
    reference = model.head_probabilities(reference_matrix, compiled=False)
    assert set(compiled) == set(reference) == {"domain", "department"}
    for head in compiled:
        np.testing.assert_allclose(compiled[head], reference[head], rtol=0, atol=1e-6)
    fast, slow = model.predict(texts), model.predict(texts, compiled=False)
    assert [p.explanation for p in fast] == [p.explanation for p in slow]
    assert all(p.explanation for p in fast)
    assert [p.heads for p in fast] == [p.heads for p in slow]


PERSONAL = [
    "我的电话13812345678，身份证110101199003077777，银行卡6222020200112233445，邮箱zhang@example.com，请回电。",
    "卡号6222 0202 0011 2233 445被盗刷，手机一三八一二三四五六七八，联系138-1234-5678",
    "【电话】开发商13812345678逾期交房【银行卡号】",
]


@pytest.mark.parametrize("segmenter", list(Segmenter))
def test_one_segmentation_gives_the_features_tokens_and_the_key_word_filters_words(segmenter: Segmenter) -> None:
    segment = PetitionSegmenter(segmenter)
    texts = [*PERSONAL, *load_corpus().subset("test").texts[:200], "", "！！"]
    for text in texts:
        tokens, words = tokens_and_words(prepare_text(text), segment)
        assert tokens == segment(prepare_text(text))
        assert words == document_words(text, segment)
    masked = tokens_and_words(prepare_text(PERSONAL[0]), segment)
    assert "身份证号" in masked[0] and "身份证号" not in masked[1]  # a placeholder gives tokens, not key words


def test_a_model_refuses_to_run_with_another_segmenter(trained: TrainResult, model: TriageModel) -> None:
    assert trained.manifest.segmenter == model.trained_segmenter == model.segmenter
    other = next(s for s in Segmenter if s != model.trained_segmenter)
    with pytest.raises(ModelLoadError, match="refuses to run with"):
        load_model(trained.folder, segmenter=other)
    assert load_model(trained.folder, segmenter=model.trained_segmenter)[0].trained_segmenter == model.segmenter
    switched = copy.copy(model)
    switched.predict(["开发商逾期交房"])  # checked once and compiled under the trained setting ...
    switched.set_params(segmenter=other.value)
    with pytest.raises(SegmenterMismatchError):  # ... and checked again once the setting changes
        switched.predict(["开发商逾期交房"])
    with pytest.raises(SegmenterMismatchError):
        switched.predict(["开发商逾期交房"], compiled=False)


def test_one_petition_gets_the_numbers_of_a_batch(model: TriageModel) -> None:
    """A single text takes its own path (no scipy matrix, a dense dot): it must give the batch's numbers."""
    fast = model.compiled()
    assert fast is not None
    texts = [*load_corpus().subset("test").texts[:40], *PERSONAL, "", "！！"]
    batch = fast.features.rows(fast.features.tokens(texts))
    batch_matrix, batch_proba = batch.to_csr(), fast.heads.probabilities(batch)
    for index, text in enumerate(texts):
        one = fast.features.rows(fast.features.tokens([text]))
        np.testing.assert_array_equal(one.indices, batch_matrix[index].indices)
        np.testing.assert_array_equal(one.data, batch_matrix[index].data)
        proba = fast.heads.probabilities(one)
        for head, values in proba.items():
            np.testing.assert_allclose(values[0], batch_proba[head][index], rtol=0, atol=1e-12)
    for text in texts[:8]:
        assert model.predict([text]) == model.predict([text], compiled=False)


def test_compiled_term_weights_are_the_heads_coefficients() -> None:
    """Explanations read weights from the compiled heads; for every class of a binary and a multi-class head
    they must be `coef_`'s row (a binary LinearSVC stores only its positive class)."""
    corpus = load_corpus().subset("test")
    texts, targets = corpus.texts[:300], np.asarray(corpus.targets()[:300], dtype=object)
    matrix = build_features(min_df=2).fit_transform(texts)
    heads = {
        "department": PlattLinearHead(folds=3).fit(matrix, targets[:, 1].astype(str)),
        "prepaid": PlattLinearHead(folds=3).fit(matrix, np.where(targets[:, 0] == "prepaid", "prepaid", "other")),
    }
    compiled = CompiledHeads.build(heads)
    columns = np.arange(0, matrix.shape[1], 7)
    for name, head in heads.items():
        for index in range(len(head.classes_)):
            np.testing.assert_array_equal(compiled.term_weights(name, index, columns), head.coef_[index][columns])
