"""The store's expected failures; the API maps each to a 4xx answer."""

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
