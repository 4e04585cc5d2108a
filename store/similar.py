"""Similar and repeat petitions among the stored ones: the similarity index, kept current.

The index (model/similarity.py) lives in memory. On start it is built from the database; before
each lookup it reads the petitions stored since (by id), so petitions written by another process
(`triage classify --enqueue`, another replica) are found too. A petition committed with a lower id
after a higher one was indexed (concurrent writers on PostgreSQL) is missed until the next start.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from model.similarity import SimilarityIndex, text_terms
from store.petitions import QueueStore
from store.records import PetitionBrief

SYNC_BATCH = 50_000


@dataclass(frozen=True)
class SimilarPetition:
    brief: PetitionBrief
    score: float


@dataclass(frozen=True)
class Related:
    """Earlier petitions about the same matter, best first, and the one this repeats, if any."""

    similar: list[SimilarPetition]
    repeat_of: SimilarPetition | None


def petitioner_runs(keys: Sequence[str | None]) -> list[range]:
    """Consecutive runs of a batch in which no petitioner key appears twice.

    The index sees stored petitions only: storing each run before looking up the next lets a petition
    find an earlier one of the same petitioner in the same batch. Usually the whole batch is one run.
    """
    runs: list[range] = []
    start, seen = 0, set[str]()
    for index, key in enumerate(keys):
        if key is None:
            continue
        if key in seen:
            runs.append(range(start, index))
            start, seen = index, set[str]()
        seen.add(key)
    runs.append(range(start, len(keys)))
    return [run for run in runs if len(run)]


class SimilarPetitions:
    """The store's petitions in a similarity index. Thread-safe."""

    def __init__(self, store: QueueStore, index: SimilarityIndex | None = None, batch: int = SYNC_BATCH) -> None:
        self.store = store
        self.index = index or SimilarityIndex()
        self.batch = batch  # rows per read while catching up
        self.last_id = 0
        self._sync_lock = threading.Lock()

    def sync(self) -> int:
        """Index the petitions stored since the last call; returns how many were added."""
        added = 0
        with self._sync_lock:
            while True:
                rows = self.store.texts_after(self.last_id, self.batch)
                if not rows:
                    return added
                if len(rows) == 1:
                    self.index.add(rows[0][0], text_terms(rows[0][1]))
                else:
                    self.index.add_many([key for key, _ in rows], [text for _, text in rows])
                self.last_id = rows[-1][0]
                added += len(rows)
                if len(rows) < self.batch:
                    return added  # a short read was the last: no second query to learn that nothing follows

    def related(
        self,
        masked_text: str,
        *,
        limit: int,
        min_score: float,
        petitioner_key: str | None = None,
        petition_id: int | None = None,
    ) -> Related:
        """Up to `limit` petitions scoring at least `min_score` against the text (not `petition_id`
        itself), and the most similar earlier petition of the same petitioner at that score."""
        self.sync()
        scores = self.index.scores(text_terms(masked_text))
        top = scores.top(limit, min_score, exclude=() if petition_id is None else (petition_id,))
        briefs = {brief.id: brief for brief in self.store.briefs(ids=[match.key for match in top])}
        similar = [SimilarPetition(briefs[match.key], match.score) for match in top if match.key in briefs]
        repeat: SimilarPetition | None = None
        if petitioner_key is not None:
            earlier = [
                brief
                for brief in self.store.briefs(petitioner_key=petitioner_key)
                if petition_id is None or brief.id < petition_id
            ]
            scored = [SimilarPetition(brief, scores.of(brief.id)) for brief in earlier]
            best = max(scored, key=lambda item: (item.score, item.brief.id), default=None)
            if best is not None and best.score >= min_score:
                repeat = best
        return Related(similar, repeat)
