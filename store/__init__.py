"""The queue database: schema, engine, migrations, the petition store and its routing rules.

Imports only `model/`. Everything above (service, batch, CLI) uses the names re-exported here.
"""

from store.engine import Backend, PoolOptions
from store.errors import (
    DatabaseUnavailable,
    DriverMissing,
    ExtensionRefused,
    IdempotencyConflict,
    InvalidTransition,
    LinkRefused,
    PetitionClosed,
    PetitionNotFound,
    StoreError,
    UnknownQueue,
    WriteConflict,
)
from store.petitions import QueueStore, known_queues, utcnow
from store.records import (
    HistoryEntry,
    Lease,
    PetitionBrief,
    Petitioner,
    PetitionQuery,
    PetitionRecord,
    QueueCounts,
    RecentPetition,
    RouteDecision,
    Submission,
    Submitted,
)
from store.rules import Deadlines, PredictionDocument, prediction_document, suggested_queue
from store.vocabulary import (
    MANUAL_TRIAGE,
    MANUAL_TRIAGE_NAME,
    Action,
    Channel,
    Clock,
    Decision,
    Role,
    SortOrder,
    Status,
)

__all__ = [
    "MANUAL_TRIAGE",
    "MANUAL_TRIAGE_NAME",
    "Action",
    "Backend",
    "Channel",
    "Clock",
    "DatabaseUnavailable",
    "Deadlines",
    "Decision",
    "DriverMissing",
    "ExtensionRefused",
    "HistoryEntry",
    "IdempotencyConflict",
    "InvalidTransition",
    "Lease",
    "LinkRefused",
    "PetitionBrief",
    "PetitionClosed",
    "PetitionNotFound",
    "PetitionQuery",
    "PetitionRecord",
    "Petitioner",
    "PoolOptions",
    "PredictionDocument",
    "QueueCounts",
    "QueueStore",
    "RecentPetition",
    "Role",
    "RouteDecision",
    "SortOrder",
    "Status",
    "StoreError",
    "Submission",
    "Submitted",
    "UnknownQueue",
    "WriteConflict",
    "known_queues",
    "prediction_document",
    "suggested_queue",
    "utcnow",
]
