"""Feed batch-classified backlog rows into the routing queue, idempotent on the row id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from batch.results import Result
from store import Channel, Petitioner, QueueStore, Role, StoreError, Submission, Submitted
from store.similar import petitioner_runs


@dataclass(frozen=True)
class Repeats:
    """The service's petitioner identity and repeat lookup (service/similar.py), wired in by the CLI:
    `key` turns a contact into the stored keyed hash, `repeat_of` finds the earlier petition of that
    petitioner about the same matter, exactly as a single submission through the API does."""

    key: Callable[[str | None], str | None]
    repeat_of: Callable[[str, str], int | None]


@dataclass
class BacklogEnqueuer:
    """A `classify_file` sink: each chunk's classified rows are stored in one commit.

    A row whose id was enqueued before (same text) is left as it is, so re-running a
    backlog never queues a petition twice; the same id with another text is a conflict. With `repeats`,
    rows with a contact get the petitioner key and `repeat_of`; a chunk is stored in more than one
    commit when a petitioner appears twice in it, so the later row finds the earlier one.
    """

    store: QueueStore
    model_version: str
    channel: Channel = Channel.LETTER
    created: int = 0
    existing: int = 0
    conflicts: int = 0
    conflict_ids: list[str] = field(default_factory=list)
    repeats: Repeats | None = None
    repeated: int = 0  # rows stored as a repeat of an earlier petition

    def __call__(self, results: list[Result]) -> None:
        valid = [result for result in results if result.prediction is not None and result.item.text is not None]
        keys = [self.repeats.key(result.item.contact) if self.repeats else None for result in valid]
        for run in petitioner_runs(keys):
            submissions = [self._submission(valid[position], keys[position]) for position in run]
            for position, outcome in zip(run, self.store.submit_each(submissions), strict=True):
                self._count(valid[position], submissions[position - run.start], outcome)

    def _submission(self, result: Result, key: str | None) -> Submission:
        text, prediction = result.item.text, result.prediction
        assert text is not None and prediction is not None
        return Submission(
            text=text,
            channel=self.channel,
            prediction=prediction,
            model_version=self.model_version,
            external_id=result.item.id,
            actor="batch",
            role=Role.SYSTEM,
            petitioner=Petitioner(contact=result.item.contact) if result.item.contact else None,
            petitioner_key=key,
            repeat_of=self.repeats.repeat_of(text, key) if self.repeats and key else None,
        )

    def _count(self, result: Result, submission: Submission, outcome: Submitted | StoreError) -> None:
        if isinstance(outcome, StoreError):
            self.conflicts += 1
            self.conflict_ids.append(result.item.id)
        elif outcome.created:
            self.created += 1
            self.repeated += submission.repeat_of is not None
        else:
            self.existing += 1


def backlog_enqueuer(
    model_version: str,
    database_url: str,
    channel: Channel = Channel.LETTER,
    repeats: Callable[[QueueStore], Repeats] | None = None,
) -> BacklogEnqueuer:
    """The enqueuer for a database; `repeats` builds the repeat lookup over that same store."""
    store = QueueStore(database_url)
    return BacklogEnqueuer(store, model_version, channel, repeats=repeats(store) if repeats else None)
