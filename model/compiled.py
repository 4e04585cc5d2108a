"""The compiled prediction path: the fitted pipeline turned into arrays once, at load.

scikit-learn's per-call machinery (parameter and input validation, three vectorisers each
rebuilding n-grams in Python, a dense copy of the weights per call) cost about six times the
segmentation of a 500-character petition. Here each document is segmented once; word columns
come from one dict lookup per token, and character n-grams are integer keys (code points
packed 21 bits each) looked up in sorted key arrays with one `searchsorted` per batch. The
TF-IDF arithmetic is the vectorisers' own, in the same order (and the same L2 kernel), so
the matrix equals scikit-learn's bit for bit and so do the scores. Training keeps
scikit-learn; `tests/test_compiled.py` compares the two paths.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

from model.explanation import DocumentWords, document_words, tokens_and_words
from model.features import LeadText, PetitionTokenizer, join_tokens, split_tokens
from model.heads import PlattLinearHead, column_scores
from model.text import prepare_text
from model.tokenize import PetitionSegmenter

CODE_BITS = np.uint64(21)  # every code point is below 2**21; three fit in a uint64 key
_WHITESPACES = re.compile(r"(?u)\s\s+")  # what scikit-learn's char analyzer collapses first


class CompileError(ValueError):
    """The fitted pipeline uses an option the compiled path does not reproduce."""


def code_points(text: str) -> np.ndarray:
    """Code points plus one (so no key of a longer n-gram equals a shorter one's), as uint64."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64) + np.uint64(1)


def ngram_keys(codes: np.ndarray, low: int, high: int) -> np.ndarray:
    """Keys of every character n-gram with low <= n <= high, each n-gram packed into one integer."""
    parts: list[np.ndarray] = []
    keys = codes
    for n in range(1, min(high, len(codes)) + 1):
        if n > 1:
            keys = (keys[:-1] << CODE_BITS) | codes[n - 1 :]
        if n >= low:
            parts.append(keys)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)


def _term_keys(terms: Sequence[str]) -> np.ndarray:
    """The key of each term (vocabulary terms of one char vectoriser), computed by term length."""
    keys = np.empty(len(terms), dtype=np.uint64)
    lengths = np.fromiter((len(term) for term in terms), dtype=np.int64, count=len(terms))
    for length in np.unique(lengths):
        where = np.flatnonzero(lengths == length)
        codes = code_points("".join(terms[int(i)] for i in where)).reshape(len(where), int(length))
        packed = codes[:, 0].copy()
        for column in range(1, int(length)):
            packed = (packed << CODE_BITS) | codes[:, column]
        keys[where] = packed
    return keys


# Never a key: keys pack at most three 21-bit code points (63 bits). Ends every table, so a search
# past the last real key lands on an entry that matches nothing, with no bounds fix-up per lookup.
_SENTINEL = np.uint64(2**64 - 1)


@dataclass(frozen=True)
class NgramTable:
    """A character n-gram vocabulary as sorted integer keys and their matrix columns.

    Both arrays end with a sentinel entry (`_SENTINEL`, column -1) that no n-gram matches."""

    keys: np.ndarray
    columns: np.ndarray
    low: int
    high: int

    @classmethod
    def build(cls, vocabulary: dict[str, int], offset: int, ngram_range: tuple[int, int]) -> NgramTable:
        terms = list(vocabulary)
        keys = _term_keys(terms)
        columns = np.fromiter(vocabulary.values(), dtype=np.int64, count=len(terms)) + offset
        order = np.argsort(keys)
        return cls(np.append(keys[order], _SENTINEL), np.append(columns[order], -1), ngram_range[0], ngram_range[1])

    def keys_of(self, text: str) -> np.ndarray:
        """The keys of the text's n-grams, sorted: lookups in ascending order are cache-friendly."""
        keys = ngram_keys(code_points(_WHITESPACES.sub(" ", text)), self.low, self.high)
        keys.sort()
        return keys

    def columns_of(self, keys: np.ndarray) -> np.ndarray:
        """The column of each key, -1 for n-grams outside the vocabulary."""
        position = np.searchsorted(self.keys, keys)
        columns = self.columns[position]
        columns[self.keys[position] != keys] = -1
        return columns

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Columns of the keys found in the vocabulary (unknown n-grams are dropped)."""
        columns = self.columns_of(keys)
        return columns[columns >= 0]


@dataclass(frozen=True)
class _WordBlock:
    vocabulary: dict[str, int]
    ngram_range: tuple[int, int]

    def columns(self, tokens: list[str]) -> list[int]:
        low, high = self.ngram_range
        get = self.vocabulary.get
        found = [get(token, -1) for token in tokens] if low == 1 else []
        for n in range(max(low, 2), min(high, len(tokens)) + 1):
            found += [get(" ".join(tokens[i : i + n]), -1) for i in range(len(tokens) - n + 1)]
        return found


@dataclass(frozen=True)
class _CharBlock:
    table: NgramTable
    text: Callable[[list[str]], str]


@dataclass(frozen=True)
class _Segments:
    """CSR-shaped arrays for scikit-learn's L2 kernel, which reads exactly these four attributes."""

    data: np.ndarray
    shape: tuple[int, int]
    indices: np.ndarray
    indptr: np.ndarray


@dataclass(frozen=True)
class FeatureRows:
    """TF-IDF rows as CSR arrays (scipy's attribute names). Why not a scipy matrix: constructing one
    validates its arrays, which for a single petition cost as much as both heads' scores."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    n_features: int

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.indptr) - 1, self.n_features

    def to_csr(self) -> sparse.csr_matrix:
        return sparse.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)


def _lead_text(tokens: int) -> Callable[[list[str]], str]:
    return lambda words: "".join(words[:tokens])


def _check_vectorizer(name: str, vectorizer: TfidfVectorizer) -> None:
    """The options `features.build_vectorizer` leaves at their defaults must still be the defaults."""
    expected: dict[str, Any] = {
        "norm": "l2",
        "use_idf": True,
        "binary": False,
        "stop_words": None,
        "max_features": None,
        "dtype": np.float64,
        "input": "content",
        "vocabulary": None,
        "strip_accents": None,
    }
    for option, value in expected.items():
        if getattr(vectorizer, option) != value:
            raise CompileError(f"vectoriser {name!r}: {option}={getattr(vectorizer, option)!r} is not compiled")


def _block(name: str, vectorizer: TfidfVectorizer, offset: int) -> _WordBlock | _CharBlock:
    _check_vectorizer(name, vectorizer)
    vocabulary = {term: offset + index for term, index in vectorizer.vocabulary_.items()}
    analyzer, preprocessor = vectorizer.analyzer, vectorizer.preprocessor
    if analyzer is split_tokens or (analyzer == "word" and vectorizer.tokenizer is split_tokens):
        if analyzer == "word" and vectorizer.lowercase:
            raise CompileError(f"vectoriser {name!r}: lowercase word n-grams are not compiled")
        return _WordBlock(vocabulary, (1, 1) if analyzer is split_tokens else vectorizer.ngram_range)
    if analyzer == "char" and (preprocessor is join_tokens or isinstance(preprocessor, LeadText)):
        if vectorizer.ngram_range[1] * int(CODE_BITS) > 64:
            raise CompileError(f"vectoriser {name!r}: n-grams longer than 3 characters do not fit one key")
        text = _lead_text(preprocessor.tokens) if isinstance(preprocessor, LeadText) else "".join
        return _CharBlock(NgramTable.build(vectorizer.vocabulary_, offset, vectorizer.ngram_range), text)
    raise CompileError(f"vectoriser {name!r}: analyzer {analyzer!r} with {preprocessor!r} is not compiled")


@dataclass(frozen=True)
class CompiledFeatures:
    """Raw texts to the same TF-IDF matrix as the fitted `features.build_features` pipeline."""

    segmenter: PetitionSegmenter
    blocks: tuple[_WordBlock | _CharBlock, ...]
    offsets: np.ndarray  # first column of each block, plus the total
    idf: np.ndarray
    sublinear: np.ndarray  # per block
    terms: np.ndarray  # term of every column, for explanations

    @classmethod
    def build(cls, features: Pipeline) -> CompiledFeatures:
        tokenizer = features.named_steps["tokens"]
        if not isinstance(tokenizer, PetitionTokenizer):
            raise CompileError(f"unknown tokenizer step {tokenizer!r}")
        union = features.named_steps["tfidf"]
        if union.transformer_weights is not None:
            raise CompileError("weighted feature unions are not compiled")
        blocks: list[_WordBlock | _CharBlock] = []
        offsets, idf, sublinear, terms = [0], [], [], []
        for name, vectorizer in union.transformer_list:
            blocks.append(_block(name, vectorizer, offsets[-1]))
            offsets.append(offsets[-1] + len(vectorizer.vocabulary_))
            idf.append(vectorizer.idf_)
            sublinear.append(bool(vectorizer.sublinear_tf))
            names = np.empty(len(vectorizer.vocabulary_), dtype=object)
            for term, index in vectorizer.vocabulary_.items():
                names[index] = term
            terms.append(names)
        return cls(
            PetitionSegmenter(tokenizer.segmenter, hmm=tokenizer.hmm),
            tuple(blocks),
            np.asarray(offsets, dtype=np.int64),
            np.concatenate(idf).astype(np.float64),
            np.asarray(sublinear),
            np.concatenate(terms),
        )

    @property
    def n_features(self) -> int:
        return int(self.offsets[-1])

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        return [self.segmenter(prepare_text(text)) for text in texts]

    def tokens_and_words(self, texts: Sequence[str]) -> tuple[list[list[str]], list[DocumentWords]]:
        """Tokens of each text and its key-word candidates (`explanation.document_words`), each text
        segmented once."""
        if not self.segmenter.hmm:  # the key-word filter segments with the HMM: only then is one pass enough
            return self.tokens(texts), [
                document_words(text, PetitionSegmenter(self.segmenter.segmenter)) for text in texts
            ]
        pairs = [tokens_and_words(prepare_text(text), self.segmenter) for text in texts]
        return [tokens for tokens, _ in pairs], [words for _, words in pairs]

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return self.transform_tokens(self.tokens(texts))

    def transform_tokens(self, documents: list[list[str]]) -> sparse.csr_matrix:
        """The TF-IDF matrix of segmented documents, rows in order, each block L2-normalised."""
        return self.rows(documents).to_csr()

    def _cells(self, documents: list[list[str]]) -> np.ndarray:
        """Every feature occurrence as one key, row * n_features + column (repeats count).

        A block's n-gram lookups run once over all documents: a batch pays numpy's per-call cost per
        block, not per document."""
        parts: list[np.ndarray] = []
        for block in self.blocks:
            if isinstance(block, _WordBlock):
                found = [block.columns(tokens) for tokens in documents]
                lengths = list(map(len, found))
                columns = np.fromiter(chain.from_iterable(found), dtype=np.int64)
            else:
                keys = [block.table.keys_of(block.text(tokens)) for tokens in documents]
                lengths = list(map(len, keys))
                columns = block.table.columns_of(keys[0] if len(keys) == 1 else np.concatenate(keys))
            known = columns >= 0
            if len(documents) > 1:
                columns += np.repeat(np.arange(len(documents), dtype=np.int64) * self.n_features, lengths)
            parts.append(columns[known])
        return np.concatenate(parts)

    def rows(self, documents: list[list[str]]) -> FeatureRows:
        """`transform_tokens` as bare CSR arrays: the same numbers, without building a scipy matrix."""
        n_rows, width, n_blocks = len(documents), self.n_features, len(self.blocks)
        if not documents:
            return FeatureRows(np.empty(0), np.empty(0, dtype=np.int32), np.zeros(1, dtype=np.int32), width)
        cells, counts = np.unique(self._cells(documents), return_counts=True)  # sorted: row, then column
        # Each (row, block) is one segment for the L2 kernel (a FeatureUnion normalises per block). The
        # cells are sorted, so a segment starts where its first possible cell would be.
        firsts = np.arange(n_rows, dtype=np.int64)[:, None] * width + self.offsets[:-1]
        segment_ends = np.empty(n_rows * n_blocks + 1, dtype=np.int32)
        segment_ends[:-1] = np.searchsorted(cells, firsts.ravel())
        segment_ends[-1] = len(cells)
        column = cells if n_rows == 1 else cells % width
        values = counts.astype(np.float64)
        if self.sublinear.all():
            np.log(values, out=values)
            values += 1.0
        elif self.sublinear.any():
            sublinear = np.repeat(np.tile(self.sublinear, n_rows), np.diff(segment_ends))
            values[sublinear] = np.log(values[sublinear]) + 1.0
        values *= self.idf[column]
        indices = column.astype(np.int32)
        inplace_csr_row_normalize_l2(_Segments(values, (n_rows * n_blocks, width), indices, segment_ends))
        return FeatureRows(values, indices, np.ascontiguousarray(segment_ends[::n_blocks]), width)


@dataclass(frozen=True)
class CompiledHeads:
    """Every head's LinearSVC weights in one (features x score columns) array: one product per batch."""

    heads: dict[str, PlattLinearHead]
    weights: np.ndarray
    intercepts: np.ndarray
    columns: dict[str, slice]

    @classmethod
    def build(cls, heads: dict[str, PlattLinearHead]) -> CompiledHeads:
        columns: dict[str, slice] = {}
        start = 0
        for name, head in heads.items():
            width = head.estimator_.coef_.shape[0]
            columns[name] = slice(start, start + width)
            start += width
        weights = np.ascontiguousarray(np.vstack([head.estimator_.coef_ for head in heads.values()]).T)
        intercepts = np.concatenate([np.atleast_1d(head.estimator_.intercept_) for head in heads.values()])
        return cls(dict(heads), weights, intercepts, columns)

    def term_weights(self, head: str, class_index: int, columns: np.ndarray) -> np.ndarray:
        """`PlattLinearHead.coef_[class_index][columns]` (a binary head stores only its positive class)."""
        where = self.columns[head]
        if where.stop - where.start > 1:
            return self.weights[columns, where.start + class_index]
        sign = 1.0 if class_index == 1 else -1.0
        return sign * self.weights[columns, where.start]

    def probabilities(self, matrix: sparse.csr_matrix | FeatureRows) -> dict[str, np.ndarray]:
        """Each head's calibrated probabilities, as `PlattLinearHead.predict_proba` computes them."""
        if isinstance(matrix, FeatureRows) and matrix.shape[0] == 1:  # one petition: a dense dot of its columns
            scores = (matrix.data @ np.take(self.weights, matrix.indices, axis=0) + self.intercepts)[None, :]
        else:
            scores = (matrix.to_csr() if isinstance(matrix, FeatureRows) else matrix) @ self.weights + self.intercepts
        result: dict[str, np.ndarray] = {}
        for name, head in self.heads.items():
            raw = scores[:, self.columns[name]]
            result[name] = head.calibrate(column_scores(raw[:, 0] if raw.shape[1] == 1 else raw))
        return result


@dataclass(frozen=True)
class CompiledModel:
    features: CompiledFeatures
    heads: CompiledHeads

    @classmethod
    def build(cls, features: Pipeline, heads: dict[str, PlattLinearHead]) -> CompiledModel:
        return cls(CompiledFeatures.build(features), CompiledHeads.build(heads))
