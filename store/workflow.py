"""Which action may move a petition from which status to which: the one transition table.

Every write of `QueueStore` asks `check` before it changes a petition, and the claim's SQL reads
the claim's sources from here too, so the allowed moves are written once. Who (which role) may
ask for an action is the service's permission map (service/auth.py), not this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from store.errors import InvalidTransition, PetitionClosed
from store.vocabulary import MANUAL_TRIAGE, Action, Status

_WAITING = frozenset({Status.QUEUED, Status.ROUTED, Status.CLAIMED, Status.RETURNED})
_OPEN = frozenset(Status) - {Status.CLOSED}


@dataclass(frozen=True)
class Transition:
    sources: frozenset[Status]
    target: Status | None  # None: the status stays as it is (a note, an extension)
    in_department_queue: bool = False  # only while the petition sits in a department's queue


TRANSITIONS: dict[Action, Transition] = {
    # A lease for a worker system; an accepted item is the department's and not claimable.
    Action.CLAIMED: Transition(frozenset({Status.QUEUED, Status.ROUTED, Status.RETURNED}), Status.CLAIMED),
    # A clerk routes anything not yet accepted; an accepted item must be returned by its department first.
    Action.ROUTED: Transition(_WAITING, Status.ROUTED),
    Action.CORRECTED: Transition(_WAITING, Status.ROUTED),
    Action.ACCEPTED: Transition(_WAITING - {Status.RETURNED}, Status.ACCEPTED, in_department_queue=True),
    Action.RETURNED: Transition(_OPEN - {Status.RETURNED}, Status.RETURNED, in_department_queue=True),
    Action.NOTED: Transition(_OPEN, None),
    Action.EXTENDED: Transition(frozenset({Status.ACCEPTED}), None),
    Action.CLOSED: Transition(_OPEN, Status.CLOSED),
}


def check(petition_id: int, action: Action, status: Status, queue: str) -> Status:
    """The status after `action`, or PetitionClosed / InvalidTransition when it is not allowed."""
    if status == Status.CLOSED:
        raise PetitionClosed(petition_id)
    transition = TRANSITIONS[action]
    if status not in transition.sources or (transition.in_department_queue and queue == MANUAL_TRIAGE):
        raise InvalidTransition(petition_id, action, status)
    return transition.target or status
