"""API keys -> roles. Keys are compared in constant time and never logged (the key's name is).

Roles: `clerk` (classify, submit, read, route, close; claim from manual_triage), `department`
(read, claim and close in its own queue only), `admin` (everything, including model reload).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.errors import ApiError
from service.settings import ApiKeyConfig


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    department: str | None = None

    def may_access_queue(self, queue: str) -> bool:
        return self.role != "department" or queue == self.department


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


api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False,
    description="API 密钥 / API key (or `Authorization: Bearer <key>`)",
)
bearer = HTTPBearer(auto_error=False, description="API 密钥 / API key as a bearer token")


def unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", "缺少或无效的 API 密钥", "missing or invalid API key",
                    headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str = "当前角色无权执行此操作", message_en: str = "this role may not do that") -> ApiError:
    return ApiError(403, "forbidden", message, message_en)


def current_principal(
    request: Request,
    key: Annotated[str | None, Security(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal:
    presented = key or (credentials.credentials if credentials else None)
    if not presented:
        raise unauthorized()
    principal = request.app.state.keyring.lookup(presented)
    if principal is None:
        raise unauthorized()
    request.state.principal = principal  # the access log records the key's name
    return principal


def require(*roles: str) -> Callable[[Principal], Principal]:
    """Dependency: the caller must hold one of `roles` (403 otherwise)."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise forbidden()
        return principal

    return check


def check_queue_access(principal: Principal, queue: str) -> None:
    if not principal.may_access_queue(queue):
        raise forbidden("部门密钥只能访问本部门队列", "a department key may only access its own queue")
