"""Feed batch-classified backlog rows into the routing queue, idempotent on the row id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.db import QueueStore, StoreError, Submission, Submitted


@dataclass
class BacklogEnqueuer:
    """A `classify_file` sink: each chunk's valid rows are stored in one commit.

    A row whose id was enqueued before (same text) is left as it is, so re-running a
    backlog never queues a petition twice; the same id with another text is a conflict.
    """

    store: QueueStore
    model_version: str
    channel: str = "letter"
    created: int = 0
    existing: int = 0
    conflicts: int = 0
    conflict_ids: list[str] = field(default_factory=list)

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        valid = [row for row in rows if not row["error"]]
        submissions = [
            Submission(text=row["_text"], channel=self.channel, prediction=row["_prediction"],
                       model_version=self.model_version, external_id=row["id"], actor="batch", role="system")
            for row in valid
        ]
        for row, result in zip(valid, self.store.submit_each(submissions) if submissions else [], strict=True):
            if isinstance(result, StoreError):
                self.conflicts += 1
                self.conflict_ids.append(row["id"])
            elif isinstance(result, Submitted) and result.created:
                self.created += 1
            else:
                self.existing += 1


def backlog_enqueuer(model_version: str, database_url: str, channel: str = "letter") -> BacklogEnqueuer:
    return BacklogEnqueuer(QueueStore(database_url), model_version, channel)
