"""Similar petitions: IDF-weighted cosine over character bigrams, with an incremental inverted index.

Why character bigrams: on hand-written topics mixed into the corpus, bigrams separated same-matter
pairs from unrelated ones better than trigrams or bigrams+trigrams (ROC AUC 1.000 vs 0.998/0.999),
need no segmenter (jieba costs ~1 ms a text, too slow to rebuild a million-petition index), and
they catch reworded repeats: the names of places, merchants and platforms survive rewording.

Terms are hashed into 2**23 buckets, so a term is an integer and document frequencies are one
array. Terms found in more than `common_share` of the documents (and more than `common_floor`)
carry little weight and most of the postings: queries skip them and merges drop their postings,
which keeps a lookup bounded as the index grows. A lookup also reads its rarest terms first and
stops adding terms once `postings_budget` postings would be read (at least `min_query_terms` terms):
on a large index the score then leaves out the query's most frequent remaining terms.

Scores are summed over the postings read only: a scratch array (one integer per document, reused
by every lookup) numbers the distinct documents among them, with no pass over the whole index, so
a lookup costs about the same at a million documents as at ten thousand (`sparse_sums=False`
keeps the former dense accumulator, a pass over every document, as the benchmark's baseline).

The index is a list of immutable segments (sorted terms -> document slots) plus a small mutable
tail. The tail is frozen into a segment every `tail_docs` documents and neighbouring segments of
similar size are merged, so each document is re-sorted O(log n) times in all.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

TERM_BITS = 23
TERM_MASK = np.uint64((1 << TERM_BITS) - 1)
_DOC_SEPARATOR = "\x01"
_MIX_A = np.uint64(0x9E3779B97F4A7C15)
_MIX_B = np.uint64(0xC2B2AE3D27D4EB4F)
_SHIFT = np.uint64(31)

Terms = NDArray[np.int64]


def _word_chars(codes: NDArray[np.uint32]) -> NDArray[np.bool_]:
    """CJK ideographs, ASCII digits and letters: bigrams never span punctuation, spaces or placeholders' brackets."""
    return (
        ((codes >= 0x4E00) & (codes <= 0x9FFF))
        | ((codes >= 0x30) & (codes <= 0x39))
        | ((codes >= 0x41) & (codes <= 0x5A))
        | ((codes >= 0x61) & (codes <= 0x7A))
    )


def _sorted_unique(values: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """np.unique without its slow path for large integer arrays (numpy 2.x hashes them)."""
    ordered = np.sort(values)
    if len(ordered) == 0:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _bigram_terms(codes: NDArray[np.uint32]) -> tuple[NDArray[np.bool_], NDArray[np.uint64]]:
    """For each adjacent pair of code points: whether both are word characters, and its term id."""
    word = _word_chars(codes)
    wide = codes.astype(np.uint64)
    hashed = (wide[:-1] * _MIX_A) ^ (wide[1:] * _MIX_B)
    hashed ^= hashed >> _SHIFT
    return word[:-1] & word[1:], hashed & TERM_MASK


def batch_terms(texts: Sequence[str]) -> tuple[NDArray[np.int64], Terms]:
    """(document index, term) pairs, each pair once, for prepared (normalised, masked) texts.

    One vectorised pass over all texts joined together: about 30 µs a text, against ~150 µs for
    the same work text by text.
    """
    if not texts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    joined = _DOC_SEPARATOR.join(text.replace(_DOC_SEPARATOR, " ") for text in texts)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    document = np.cumsum(codes == ord(_DOC_SEPARATOR))
    pair, terms = _bigram_terms(codes)
    keys = (document[:-1][pair].astype(np.uint64) << np.uint64(32)) | terms[pair]
    unique = _sorted_unique(keys)
    return (unique >> np.uint64(32)).astype(np.int64), (unique & np.uint64(0xFFFFFFFF)).astype(np.int64)


_M64 = (1 << 64) - 1


def phrase_terms(phrase: str) -> list[int]:
    """The terms of a short phrase of word characters, in plain Python (same ids as `text_terms`)."""
    mask, mix_a, mix_b = int(TERM_MASK), int(_MIX_A), int(_MIX_B)
    terms = []
    for first, second in itertools.pairwise(phrase):
        hashed = ((ord(first) * mix_a) & _M64) ^ ((ord(second) * mix_b) & _M64)
        terms.append((hashed ^ (hashed >> 31)) & mask)
    return terms


def text_terms(text: str) -> Terms:
    """The sorted distinct terms of one prepared text."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    if len(codes) < 2:
        return np.zeros(0, np.int64)
    pair, terms = _bigram_terms(codes)
    return _sorted_unique(terms[pair]).astype(np.int64)


@dataclass(frozen=True)
class Match:
    key: int
    score: float


@dataclass(frozen=True)
class _Segment:
    terms: NDArray[np.int32]  # sorted distinct term ids
    starts: NDArray[np.int64]  # postings of terms[i] are slots[starts[i]:starts[i + 1]]
    slots: NDArray[np.int32]  # document slots (positions in the index's key and norm arrays)
    documents: int

    @classmethod
    def build(cls, slots: NDArray[np.integer], terms: NDArray[np.integer], documents: int) -> _Segment:
        """Postings sorted by term, then slot (one int64 sort of term << 32 | slot)."""
        ordered = np.sort((terms.astype(np.int64) << 32) | slots.astype(np.int64))
        by_term = (ordered >> 32).astype(np.int32)
        by_slot = (ordered & 0xFFFFFFFF).astype(np.int32)
        if len(by_term) == 0:
            return cls(by_term, np.zeros(1, np.int64), by_slot, documents)
        first = np.empty(len(by_term), dtype=bool)
        first[0] = True
        np.not_equal(by_term[1:], by_term[:-1], out=first[1:])
        starts = np.append(np.flatnonzero(first), len(by_term)).astype(np.int64)
        return cls(by_term[first], starts, by_slot, documents)

    def pairs(self) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        return self.slots, np.repeat(self.terms, np.diff(self.starts))

    def postings(self, terms: Terms, weights: NDArray[np.float64]) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
        """Slots holding any of `terms`, each with the weight of the term that brought it."""
        where = np.searchsorted(self.terms, terms)
        where[where >= len(self.terms)] = 0
        found = self.terms[where] == terms if len(self.terms) else np.zeros(len(terms), dtype=bool)
        begin, end = self.starts[where[found]], self.starts[where[found] + 1]
        lengths = end - begin
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.int32), np.zeros(0)
        offsets = np.repeat(begin - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
        return self.slots[offsets], np.repeat(weights[found], lengths)


class Scores:
    """Cosine scores of one query against every indexed document that shares a term with it."""

    def __init__(self, keys: NDArray[np.int64], values: NDArray[np.float64]) -> None:
        self.keys = keys
        self.values = values

    def top(self, limit: int, min_score: float = 0.0, exclude: Iterable[int] = ()) -> list[Match]:
        """The best `limit` documents at or above `min_score`, best first (newer first on ties)."""
        wanted = self.values >= min_score
        skipped = np.fromiter(exclude, dtype=np.int64)
        if len(skipped):
            wanted &= ~np.isin(self.keys, skipped)
        keys, values = self.keys[wanted], self.values[wanted]
        if len(keys) > limit:
            part = np.argpartition(-values, limit - 1)[:limit]
            keys, values = keys[part], values[part]
        order = np.lexsort((-keys, -values))
        return [Match(int(keys[i]), round(float(values[i]), 4)) for i in order[:limit]]

    def of(self, key: int) -> float:
        found = np.flatnonzero(self.keys == key)
        return round(float(self.values[found[0]]), 4) if len(found) else 0.0


class SimilarityIndex:
    """An append-only index of documents (by integer key) for cosine lookups. Thread-safe."""

    def __init__(
        self,
        *,
        common_share: float = 0.01,
        common_floor: int = 100,
        tail_docs: int = 2048,
        postings_budget: int = 150_000,
        min_query_terms: int = 8,
        sparse_sums: bool = True,
    ) -> None:
        self.sparse_sums = sparse_sums
        self.postings_budget = postings_budget
        self.min_query_terms = min_query_terms
        self.common_share = common_share
        self.common_floor = common_floor
        self.tail_docs = tail_docs
        self._lock = threading.RLock()
        self._df = np.zeros(1 << TERM_BITS, dtype=np.int32)
        self._keys = np.zeros(1024, dtype=np.int64)
        self._norms = np.zeros(1024, dtype=np.float64)
        self._scratch = np.zeros(1024, dtype=np.int32)  # per document slot, overwritten by each lookup
        self._count = 0
        self._segments: list[_Segment] = []
        self._tail: dict[int, list[int]] = {}
        self._tail_documents = 0

    def __len__(self) -> int:
        return self._count

    @property
    def common_limit(self) -> float:
        """Terms in more documents than this are skipped by lookups and dropped from merged postings."""
        return max(self.common_floor, self.common_share * self._count)

    def _idf(self, terms: Terms) -> NDArray[np.float64]:
        return np.log((self._count + 1) / (self._df[terms] + 1.0)) + 1.0

    def _grow(self, needed: int) -> None:
        if needed <= len(self._keys):
            return
        size = max(needed, 2 * len(self._keys))
        self._keys = np.resize(self._keys, size)
        self._norms = np.resize(self._norms, size)
        self._scratch = np.zeros(size, dtype=np.int32)

    # -- adding ------------------------------------------------------------------------------------

    def add(self, key: int, terms: Terms) -> None:
        """Index one document (its distinct terms, as from `text_terms`)."""
        with self._lock:
            self._grow(self._count + 1)
            slot = self._count
            self._count += 1
            np.add.at(self._df, terms, 1)
            self._keys[slot] = key
            self._norms[slot] = float(np.sqrt(np.sum(self._idf(terms) ** 2))) or 1.0
            for term in terms.tolist():
                self._tail.setdefault(term, []).append(slot)
            self._tail_documents += 1
            if self._tail_documents >= self.tail_docs:
                self._freeze()

    def add_many(self, keys: Sequence[int], texts: Sequence[str]) -> None:
        """Index many prepared texts at once (a rebuild): one vectorised pass, one new segment."""
        if not keys:
            return
        documents, terms = batch_terms(texts)
        with self._lock:
            self._freeze()
            first = self._count
            self._grow(first + len(keys))
            self._count += len(keys)
            self._df += np.bincount(terms, minlength=len(self._df)).astype(np.int32)
            self._keys[first : self._count] = np.asarray(keys, dtype=np.int64)
            squares = np.bincount(documents, weights=self._idf(terms) ** 2, minlength=len(keys))
            self._norms[first : self._count] = np.where(squares > 0, np.sqrt(squares), 1.0)
            self._segments.append(_Segment.build(documents + first, terms, len(keys)))
            self._merge()

    def _freeze(self) -> None:
        if not self._tail_documents:
            return
        lengths = [len(slots) for slots in self._tail.values()]
        terms = np.repeat(np.fromiter(self._tail.keys(), dtype=np.int64, count=len(lengths)), lengths)
        slots = np.fromiter((slot for group in self._tail.values() for slot in group), np.int64, len(terms))
        self._segments.append(_Segment.build(slots, terms, self._tail_documents))
        self._tail, self._tail_documents = {}, 0
        self._merge()

    def _merge(self) -> None:
        """Merge the last two segments while the newer is at least half the size of the older."""
        while len(self._segments) >= 2 and 2 * self._segments[-1].documents >= self._segments[-2].documents:
            newer, older = self._segments.pop(), self._segments.pop()
            (older_slots, older_terms), (newer_slots, newer_terms) = older.pairs(), newer.pairs()
            slots = np.concatenate([older_slots, newer_slots])
            terms = np.concatenate([older_terms, newer_terms])
            rare = self._df[terms] <= self.common_limit
            self._segments.append(_Segment.build(slots[rare], terms[rare], older.documents + newer.documents))

    # -- looking up --------------------------------------------------------------------------------

    def scores(self, terms: Terms) -> Scores:
        """Cosine of the query with every document sharing one of its informative terms."""
        with self._lock:
            if not self._count or not len(terms):
                return Scores(np.zeros(0, np.int64), np.zeros(0))
            idf = self._idf(terms)
            query_norm = float(np.sqrt(np.sum(idf**2)))
            # The rarest terms first, until the postings to read reach the budget: they carry most of the
            # weight, and the budget bounds a lookup however large the index grows.
            frequency = self._df[terms]
            order = np.argsort(frequency, kind="stable")
            within = np.cumsum(frequency[order]) <= self.postings_budget
            within[: self.min_query_terms] = True
            chosen = order[within & (frequency[order] <= self.common_limit)]
            terms, weights = terms[chosen], idf[chosen] ** 2
            slot_parts, weight_parts = [], []
            for segment in self._segments:
                slots, found = segment.postings(terms, weights)
                slot_parts.append(slots)
                weight_parts.append(found)
            for term, weight in zip(terms.tolist(), weights.tolist(), strict=True):
                tail = self._tail.get(term)
                if tail:
                    slot_parts.append(np.asarray(tail, dtype=np.int64))
                    weight_parts.append(np.full(len(tail), weight))
            slots = np.concatenate(slot_parts) if slot_parts else np.zeros(0, np.int64)
            if not len(slots):
                return Scores(np.zeros(0, np.int64), np.zeros(0))
            posting_weights = np.concatenate(weight_parts)
            if self.sparse_sums:
                hits, shared = self._sums(slots, posting_weights)
            else:
                dense = np.bincount(slots, weights=posting_weights, minlength=self._count).astype(
                    np.float64, copy=False
                )
                hits = np.flatnonzero(dense).astype(np.int64)
                shared = dense[hits]
            values = shared / (query_norm * self._norms[hits])
            return Scores(self._keys[hits].copy(), np.minimum(values, 1.0))

    def _sums(
        self, slots: NDArray[np.integer], weights: NDArray[np.float64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The distinct slots among the postings and each one's summed weight, in work proportional to
        the postings (no sort, no pass over the index). Caller holds the lock (the scratch is shared)."""
        position = np.arange(len(slots), dtype=np.int32)  # int32: half the memory traffic of random access
        self._scratch[slots] = position  # of repeated slots, one occurrence's position stays
        hits = slots[self._scratch[slots] == position].astype(np.int64)  # that occurrence: one per slot
        self._scratch[hits] = np.arange(len(hits), dtype=np.int32)
        sums = np.bincount(self._scratch[slots], weights=weights, minlength=len(hits)).astype(np.float64, copy=False)
        return hits, sums

    def similar(self, text: str, limit: int, min_score: float, exclude: Iterable[int] = ()) -> list[Match]:
        return self.scores(text_terms(text)).top(limit, min_score, exclude)
