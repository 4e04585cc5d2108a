"""Shared text features: jieba words plus character n-grams.

Colloquial petitions are segmented badly often enough that character n-grams
recover what word features lose; words keep multi-character terms intact and
make explanations readable. Text is tokenised once per document.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from copy import copy
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline

from model.text import prepare_text
from model.tokenize import DEFAULT_SEGMENTER, PetitionSegmenter, Segmenter

TOKEN_SEPARATOR = "\t"


def split_tokens(document: str) -> list[str]:
    return document.split(TOKEN_SEPARATOR) if document else []


def join_tokens(document: str) -> str:
    return document.replace(TOKEN_SEPARATOR, "")


class LeadText:
    """The first `tokens` tokens, unsegmented: petitions state their demand up front (titles, 事由)."""

    def __init__(self, tokens: int = 20) -> None:
        self.tokens = tokens

    def __call__(self, document: str) -> str:
        return "".join(split_tokens(document)[: self.tokens])

    def __repr__(self) -> str:
        return f"LeadText(tokens={self.tokens})"


_token_cache: dict[tuple[str, bool, str], str] | None = None


@contextmanager
def cached_tokens() -> Iterator[None]:
    """Within the block each distinct text is segmented once.

    Training featurises the same rows several times (weight selection, the report fit, the refit,
    comparisons); segmentation is most of that cost. Off outside the block, so a service holds no cache.
    """
    global _token_cache
    outer = _token_cache
    _token_cache = {} if outer is None else outer
    try:
        yield
    finally:
        _token_cache = outer


class PetitionTokenizer(TransformerMixin, BaseEstimator):
    """Prepares (normalise + mask) and segments raw petitions into tab-joined tokens."""

    def __init__(self, hmm: bool = True, segmenter: str = DEFAULT_SEGMENTER.value) -> None:
        self.hmm = hmm
        self.segmenter = segmenter

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("segmenter", Segmenter.JIEBA.value)  # files from before the setting used jieba
        super().__setstate__(state)

    def fit(self, X: Iterable[str], y: object = None) -> PetitionTokenizer:
        return self

    def tokens(self, X: Iterable[str]) -> list[list[str]]:
        """Each text prepared and segmented into its token list."""
        tokenizer = PetitionSegmenter(self.segmenter, hmm=self.hmm)
        return [tokenizer(prepare_text(text)) for text in X]

    def transform(self, X: Iterable[str]) -> list[str]:
        cache = _token_cache
        if cache is None:
            return [TOKEN_SEPARATOR.join(tokens) for tokens in self.tokens(X)]
        texts = list(X)
        missing = list(dict.fromkeys(text for text in texts if (self.segmenter, self.hmm, text) not in cache))
        for text, tokens in zip(missing, self.tokens(missing), strict=True):
            cache[(self.segmenter, self.hmm, text)] = TOKEN_SEPARATOR.join(tokens)
        return [cache[(self.segmenter, self.hmm, text)] for text in texts]


def build_vectorizer(
    word_ngram_range: tuple[int, int] = (1, 1),
    char_ngram_range: tuple[int, int] = (1, 3),
    lead_tokens: int = 20,
    min_df: int = 1,
) -> FeatureUnion:
    """Word and character TF-IDF over already-tokenised documents, plus characters of the opening."""
    word = TfidfVectorizer(
        analyzer=split_tokens if word_ngram_range == (1, 1) else "word",
        tokenizer=None if word_ngram_range == (1, 1) else split_tokens,
        token_pattern=None,
        lowercase=False,
        ngram_range=word_ngram_range,
        sublinear_tf=True,
        min_df=min_df,
    )
    char = TfidfVectorizer(
        analyzer="char",
        preprocessor=join_tokens,
        ngram_range=char_ngram_range,
        sublinear_tf=True,
        min_df=min_df,
    )
    lead = TfidfVectorizer(
        analyzer="char",
        preprocessor=LeadText(lead_tokens),
        ngram_range=(1, 2),
        sublinear_tf=True,
        min_df=min_df,
    )
    return FeatureUnion([("word", word), ("char", char), ("lead", lead)])


def build_features(segmenter: str = DEFAULT_SEGMENTER.value, **vectorizer_params: Any) -> Pipeline:
    """Raw text in, sparse TF-IDF matrix out."""
    return Pipeline(
        [("tokens", PetitionTokenizer(segmenter=segmenter)), ("tfidf", build_vectorizer(**vectorizer_params))]
    )


def detach_vocabularies(features: Pipeline) -> tuple[Pipeline, dict[str, np.ndarray]]:
    """A shallow copy of fitted `features` without vocabulary dicts, plus each vocabulary as a term array."""
    union = copy(features.named_steps["tfidf"])
    vocabularies: dict[str, np.ndarray] = {}
    detached = []
    for name, vectorizer in union.transformer_list:
        clone = copy(vectorizer)
        vocabulary = clone.__dict__.pop("vocabulary_")
        terms = np.empty(len(vocabulary), dtype=object)
        for term, index in vocabulary.items():
            terms[index] = term
        vocabularies[name] = terms.astype(str)
        detached.append((name, clone))
    union.transformer_list = detached
    pipeline = copy(features)
    pipeline.steps = [(name, union if name == "tfidf" else step) for name, step in features.steps]
    return pipeline, vocabularies


def attach_vocabularies(features: Pipeline, vocabularies: dict[str, np.ndarray]) -> None:
    for name, vectorizer in features.named_steps["tfidf"].transformer_list:
        vectorizer.vocabulary_ = {str(term): index for index, term in enumerate(vocabularies[name])}
