"""The queue database: schema, engine, migrations, the petition store and its routing rules.

Imports only `model/`. Everything above (service, batch, CLI) uses the names re-exported here.
"""

from store.errors import IdempotencyConflict, PetitionClosed, PetitionNotFound, StoreError, UnknownQueue
from store.petitions import QueueStore, known_queues, utcnow
from store.records import Correction, HistoryEntry, Lease, PetitionRecord, QueueCounts, Submission, Submitted
from store.rules import PredictionDocument, prediction_document, suggested_queue
from store.vocabulary import MANUAL_TRIAGE, MANUAL_TRIAGE_NAME, Action, Channel, Role, Status

__all__ = [
    "MANUAL_TRIAGE",
    "MANUAL_TRIAGE_NAME",
    "Action",
    "Channel",
    "Correction",
    "HistoryEntry",
    "IdempotencyConflict",
    "Lease",
    "PetitionClosed",
    "PetitionNotFound",
    "PetitionRecord",
    "PredictionDocument",
    "QueueCounts",
    "QueueStore",
    "Role",
    "Status",
    "StoreError",
    "Submission",
    "Submitted",
    "UnknownQueue",
    "known_queues",
    "prediction_document",
    "suggested_queue",
    "utcnow",
]
