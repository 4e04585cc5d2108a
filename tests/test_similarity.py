"""The similarity index: scores match a brute-force cosine, segments merge without losing anyone,
and on the hand-written test petitions (tests/data/similar_petitions.jsonl) repeats are found."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from model.similarity import SimilarityIndex, batch_terms, phrase_terms, text_terms
from model.text import prepare_text

DATA = Path(__file__).parent / "data" / "similar_petitions.jsonl"


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]


def test_terms_are_character_bigrams_within_word_runs() -> None:
    assert len(text_terms("锦绣华庭")) == 3
    assert len(text_terms("锦绣，华庭")) == 2  # no bigram across punctuation
    assert len(text_terms("【电话】")) == 1  # placeholders' brackets are not word characters
    assert sorted(set(phrase_terms("力动健身ab12"))) == text_terms("力动健身ab12").tolist()
    documents, terms = batch_terms(["锦绣华庭", "华庭"])
    assert documents.tolist() == [0, 0, 0, 1]
    assert set(terms[documents == 1].tolist()) <= set(terms[documents == 0].tolist())


def brute_force(texts: list[str], query: str) -> np.ndarray:
    """Cosine of idf-weighted binary bigram vectors, computed directly."""
    sets = [set(text_terms(text).tolist()) for text in texts]
    count = len(sets)
    df: dict[int, int] = {}
    for terms in sets:
        for term in terms:
            df[term] = df.get(term, 0) + 1

    def idf(term: int) -> float:
        return float(np.log((count + 1) / (df.get(term, 0) + 1)) + 1)

    wanted = set(text_terms(query).tolist())
    query_norm = np.sqrt(sum(idf(term) ** 2 for term in wanted))
    return np.array(
        [
            sum(idf(term) ** 2 for term in wanted & terms) / (query_norm * np.sqrt(sum(idf(t) ** 2 for t in terms)))
            for terms in sets
        ]
    )


def test_scores_equal_brute_force_cosine_whether_added_one_by_one_or_in_bulk(rows: list[dict[str, str]]) -> None:
    texts = [prepare_text(row["text"]) for row in rows]
    one_by_one = SimilarityIndex(tail_docs=8)  # many freezes and merges
    bulk = SimilarityIndex()
    bulk.add_many(list(range(len(texts))), texts)
    for key, text in enumerate(texts):
        one_by_one.add(key, text_terms(text))
    assert len(one_by_one) == len(bulk) == len(texts)
    assert len(one_by_one._segments) > 1
    query = texts[0]
    expected = brute_force(texts, query)
    for index in (one_by_one, bulk):
        scores = index.scores(text_terms(query))
        got = np.zeros(len(texts))
        got[scores.keys] = scores.values
        # norms of documents added one by one use the idf of their time, so only the bulk index is exact
        if index is bulk:
            np.testing.assert_allclose(got, expected, atol=1e-9)
        assert scores.top(1)[0].key == 0  # a text is most similar to itself
    top = bulk.scores(text_terms(query)).top(5, exclude=[0])
    assert [rows[match.key]["topic"] for match in top[:3]] == ["jxht"] * 3
    assert all(a.score >= b.score for a, b in itertools.pairwise(top))


def test_sparse_sums_give_the_dense_accumulators_scores_for_every_query(rows: list[dict[str, str]]) -> None:
    """The lookup sums over the postings read (a scratch array numbers the documents); the former dense
    accumulator over every document is the reference, on an index with segments and a tail."""
    texts = [prepare_text(row["text"]) for row in rows]
    index = SimilarityIndex(tail_docs=8)
    for key, text in enumerate(texts):
        index.add(key * 10, text_terms(text))
    assert index._tail and len(index._segments) > 1
    for text in [*texts, "完全无关的一句话", ""]:
        index.sparse_sums = False
        dense = index.scores(text_terms(text))
        index.sparse_sums = True
        sparse = index.scores(text_terms(text))
        order_sparse, order_dense = np.argsort(sparse.keys), np.argsort(dense.keys)
        np.testing.assert_array_equal(sparse.keys[order_sparse], dense.keys[order_dense])
        np.testing.assert_allclose(sparse.values[order_sparse], dense.values[order_dense], rtol=1e-12)
        assert sparse.top(5, 0.12) == dense.top(5, 0.12)


def test_reworded_repeats_score_highest_among_the_petitioners_earlier_petitions(rows: list[dict[str, str]]) -> None:
    index = SimilarityIndex()
    by_id = {row["id"]: position for position, row in enumerate(rows)}
    ordered = sorted(range(len(rows)), key=lambda i: rows[i]["received_at"])
    found: dict[str, str] = {}
    for position in ordered:
        row = rows[position]
        scores = index.scores(text_terms(prepare_text(row["text"])))
        earlier = [
            other for other in rows if other["contact"] == row["contact"] and other["received_at"] < row["received_at"]
        ]
        best = max(((scores.of(by_id[other["id"]]), other["id"]) for other in earlier), default=(0.0, ""))
        if best[0] >= 0.12:
            found[row["id"]] = best[1]
        index.add(position, text_terms(prepare_text(row["text"])))
    assert found == {row["id"]: row["repeat_of"] for row in rows if row["repeat_of"]}


def test_common_terms_are_skipped_and_dropped_at_merge() -> None:
    index = SimilarityIndex(common_share=0.5, common_floor=2, tail_docs=4)
    for key in range(8):
        index.add(key, text_terms(f"共同的话第{key}件独特内容{chr(0x4E00 + key * 7)}{chr(0x4E80 + key)}"))
    common = text_terms("共同")
    assert all(int(common[0]) not in segment.terms.tolist() for segment in index._segments)
    assert index.scores(common).top(5) == []  # a query of only common terms finds nothing
