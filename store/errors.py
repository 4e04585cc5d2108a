"""The store's expected failures; the API maps each to a 4xx answer, or 503 for `DatabaseUnavailable`."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the data layer's expected failures."""


class PetitionNotFound(StoreError):
    pass


class PetitionClosed(StoreError):
    pass


class UnknownQueue(StoreError):
    pass


class IdempotencyConflict(StoreError):
    """The same external id or idempotency key was already used for a different text.

    `args[0]` is the id of the petition that holds the key.
    """

    @property
    def petition_id(self) -> int:
        return int(self.args[0])


class InvalidTransition(StoreError):
    """The action is not allowed from the petition's current status (store/workflow.py).

    `args`: (petition id, action, status).
    """

    @property
    def action(self) -> str:
        return str(self.args[1])

    @property
    def status(self) -> str:
        return str(self.args[2])


class ExtensionRefused(StoreError):
    """An extension beyond the configured maximum, or a second one. `args[1]` says which: too_long | used."""

    @property
    def reason(self) -> str:
        return str(self.args[1])


class LinkRefused(StoreError):
    """A petition cannot be linked as asked: `args[1]` is "self" (to itself) or "cycle" (the case
    is itself linked to this petition)."""

    @property
    def reason(self) -> str:
        return str(self.args[1])


class DatabaseUnavailable(StoreError):
    """The database cannot be reached or used right now (server down, pool exhausted, file locked).

    Nothing was committed by the failed call; the client may retry. `args[0]` names the driver's error
    type only, never its message (which can quote SQL parameters, that is petition text).
    """


class WriteConflict(DatabaseUnavailable):
    """A concurrent transaction won (deadlock or serialization failure) and retries ran out."""


class DriverMissing(RuntimeError):
    """The configured database needs a driver that is not installed (the `postgres` extra)."""


class RejectedValue(StoreError):
    """The database refused a value it was given (a DataError, SQLSTATE class 22: a NUL in text on
    PostgreSQL, a number out of range). The request's input, not an outage: the API answers 422.

    Nothing was committed by the failed call. `args[0]` names the driver's error type only, never its
    message (which can quote SQL parameters, that is petition text).
    """
