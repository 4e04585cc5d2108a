"""Feed batch-classified backlog rows into the routing queue, idempotent on the row id."""

from __future__ import annotations

from dataclasses import dataclass, field

from batch.results import Result
from store import Channel, QueueStore, Role, StoreError, Submission, Submitted


@dataclass
class BacklogEnqueuer:
    """A `classify_file` sink: each chunk's classified rows are stored in one commit.

    A row whose id was enqueued before (same text) is left as it is, so re-running a
    backlog never queues a petition twice; the same id with another text is a conflict.
    """

    store: QueueStore
    model_version: str
    channel: Channel = Channel.LETTER
    created: int = 0
    existing: int = 0
    conflicts: int = 0
    conflict_ids: list[str] = field(default_factory=list)

    def __call__(self, results: list[Result]) -> None:
        valid = [result for result in results if result.prediction is not None and result.item.text is not None]
        submissions = [
            Submission(
                text=result.item.text,
                channel=self.channel,
                prediction=result.prediction,
                model_version=self.model_version,
                external_id=result.item.id,
                actor="batch",
                role=Role.SYSTEM,
            )
            for result in valid
            if result.item.text is not None and result.prediction is not None
        ]
        for result, outcome in zip(valid, self.store.submit_each(submissions) if submissions else [], strict=True):
            if isinstance(outcome, StoreError):
                self.conflicts += 1
                self.conflict_ids.append(result.item.id)
            elif isinstance(outcome, Submitted) and outcome.created:
                self.created += 1
            else:
                self.existing += 1


def backlog_enqueuer(model_version: str, database_url: str, channel: Channel = Channel.LETTER) -> BacklogEnqueuer:
    return BacklogEnqueuer(QueueStore(database_url), model_version, channel)
