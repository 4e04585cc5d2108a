"""API keys -> principals, and what each role may do (the one permission map; the console reads it).

Keys are compared in constant time and never logged (the key's name is). Roles: `clerk`
(classify, submit, read, search, route, note, close; claim from manual_triage), `department`
(in its own queue only: read, search, claim, accept, return, note, extend, close), `admin`
(everything, including model reload). Views across all queues (hot topics, acceptance statistics)
are for clerks and admins: a department key gets 403, as for another department's queue. Which
status an action may start from is store/workflow.py.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

from service.errors import ApiError
from service.settings import ApiKeyConfig
from store import MANUAL_TRIAGE, Role


class Permission(StrEnum):
    INTAKE = "intake"  # classify and submit petitions
    ROUTE = "route"  # confirm or correct a route
    CLOSE = "close"
    HANDLE = "handle"  # the department's work: accept into its work list, return, extend
    NOTE = "note"  # add a note to the history
    CLAIM_ANY_QUEUE = "claim_any_queue"
    CLAIM_MANUAL_TRIAGE = "claim_manual_triage"
    CLAIM_OWN_QUEUE = "claim_own_queue"
    READ_ALL_QUEUES = "read_all_queues"  # without it, only the key's own department queue
    SEE_TEXT = "see_text"  # raw text at any time (departments see it once handed over)
    RELOAD_MODEL = "reload_model"
    OVERRIDE_LEASE = "override_lease"  # close an item claimed by another worker
    READ_HOTSPOTS = "read_hotspots"  # hot-topic clusters across all queues
    READ_STATS = "read_stats"  # acceptance of the suggestions across all departments (GET /v1/stats)


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CLERK: frozenset(
        {
            Permission.INTAKE,
            Permission.ROUTE,
            Permission.CLOSE,
            Permission.NOTE,
            Permission.CLAIM_MANUAL_TRIAGE,
            Permission.READ_ALL_QUEUES,
            Permission.SEE_TEXT,
            Permission.READ_HOTSPOTS,
            Permission.READ_STATS,
        }
    ),
    Role.DEPARTMENT: frozenset({Permission.CLOSE, Permission.CLAIM_OWN_QUEUE, Permission.HANDLE, Permission.NOTE}),
    Role.ADMIN: frozenset(Permission),
    Role.SYSTEM: frozenset(),
}


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    department: str | None = None

    def can(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]

    def holds(self, lease_owner: str) -> bool:
        """The lease is this key's own (claims are recorded as `name` or `name/worker`)."""
        return lease_owner == self.name or lease_owner.startswith(f"{self.name}/")

    def visible_queues(self, queues: tuple[str, ...]) -> tuple[str, ...]:
        """The queues this key may read, of `queues`."""
        return tuple(queue for queue in queues if self.may_access_queue(queue))

    def may_access_queue(self, queue: str) -> bool:
        return self.can(Permission.READ_ALL_QUEUES) or queue == self.department

    def may_claim_from(self, queue: str) -> bool:
        return (
            self.can(Permission.CLAIM_ANY_QUEUE)
            or (self.can(Permission.CLAIM_OWN_QUEUE) and queue == self.department)
            or (self.can(Permission.CLAIM_MANUAL_TRIAGE) and queue == MANUAL_TRIAGE)
        )


class KeyRing:
    """Holds sha256 digests of the configured keys; lookup touches every entry (no early exit)."""

    def __init__(self, keys: dict[str, ApiKeyConfig]) -> None:
        self._entries = [(hashlib.sha256(key.encode()).digest(), config) for key, config in keys.items()]

    def lookup(self, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found: ApiKeyConfig | None = None
        for candidate, config in self._entries:
            if hmac.compare_digest(candidate, digest):
                found = config
        if found is None:
            return None
        return Principal(found.name, found.role, found.department)


def unauthorized() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "缺少或无效的 API 密钥",
        "missing or invalid API key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def forbidden(message: str = "当前角色无权执行此操作", message_en: str = "this role may not do that") -> ApiError:
    return ApiError(403, "forbidden", message, message_en)


def check_permission(principal: Principal, permission: Permission) -> None:
    if not principal.can(permission):
        raise forbidden()


def check_queue_access(principal: Principal, queue: str) -> None:
    if not principal.may_access_queue(queue):
        raise forbidden("部门密钥只能访问本部门队列", "a department key may only access its own queue")


def check_claim(principal: Principal, queue: str) -> None:
    check_queue_access(principal, queue)
    if not principal.may_claim_from(queue):
        raise forbidden("登记员只能领取人工分流队列", "clerks claim only from manual_triage")


def permission_map() -> dict[str, list[str]]:
    """Role -> permissions, for the console (it shows and hides controls by these, never its own rules)."""
    return {role.value: sorted(p.value for p in PERMISSIONS[role]) for role in Role if role != Role.SYSTEM}
