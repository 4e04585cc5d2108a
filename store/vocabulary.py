"""The queue's fixed vocabularies: petition status, intake channel, actor role, history action.

Each is a `StrEnum` (the stored value is the member's value), with the Chinese label the console
shows. Queue ids are not here: they are the taxonomy's department ids plus `MANUAL_TRIAGE`.
Add members (for instance a department workflow's accepted/returned/extended) rather than renaming.
"""

from __future__ import annotations

from enum import StrEnum

MANUAL_TRIAGE = "manual_triage"
MANUAL_TRIAGE_NAME = "人工分流"


class Status(StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"
    ROUTED = "routed"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


class Channel(StrEnum):
    LETTER = "letter"
    VISIT = "visit"
    WEB = "web"
    PHONE = "phone"

    @property
    def label(self) -> str:
        return CHANNEL_LABELS[self]


class Role(StrEnum):
    CLERK = "clerk"
    DEPARTMENT = "department"
    ADMIN = "admin"
    SYSTEM = "system"  # batch jobs and other non-interactive writers; never an API key's role

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


class Action(StrEnum):
    """What a history entry records."""

    SUBMITTED = "submitted"
    CLAIMED = "claimed"
    ROUTED = "routed"
    CORRECTED = "corrected"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


STATUS_LABELS: dict[Status, str] = {
    Status.QUEUED: "待确认",
    Status.ROUTED: "已分流",
    Status.CLAIMED: "已领取",
    Status.CLOSED: "已办结",
}
CHANNEL_LABELS: dict[Channel, str] = {
    Channel.LETTER: "来信",
    Channel.VISIT: "来访",
    Channel.WEB: "网上",
    Channel.PHONE: "电话",
}
ROLE_LABELS: dict[Role, str] = {
    Role.CLERK: "登记员",
    Role.DEPARTMENT: "责任部门",
    Role.ADMIN: "管理员",
    Role.SYSTEM: "系统",
}
ACTION_LABELS: dict[Action, str] = {
    Action.SUBMITTED: "登记",
    Action.CLAIMED: "领取",
    Action.ROUTED: "确认分流",
    Action.CORRECTED: "更正分流",
    Action.CLOSED: "办结",
}
