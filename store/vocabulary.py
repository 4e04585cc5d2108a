"""The queue's fixed vocabularies: petition status, intake channel, actor role, history action.

Each is a `StrEnum` (the stored value is the member's value), with the Chinese label the console
shows. Queue ids are not here: they are the taxonomy's department ids plus `MANUAL_TRIAGE`.
Add members rather than renaming. Which action may move which status where is in store/workflow.py.
"""

from __future__ import annotations

from enum import StrEnum

MANUAL_TRIAGE = "manual_triage"
MANUAL_TRIAGE_NAME = "人工分流"


class Status(StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"
    ROUTED = "routed"
    ACCEPTED = "accepted"  # in the department's work list (an assignment until closed or returned)
    RETURNED = "returned"  # sent back to manual triage by a department, with a reason
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
    ACCEPTED = "accepted"
    RETURNED = "returned"
    NOTED = "noted"
    EXTENDED = "extended"
    CLOSED = "closed"
    LINKED = "linked"  # a clerk linked a repeat to an existing case (recorded on both)

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


class Decision(StrEnum):
    """A decision on the model's suggestion, kept as a labelled example for retraining.

    ACCEPTED: the suggested route confirmed as is. CORRECTED: a suggestion awaiting review routed
    elsewhere. REROUTED: a route already in effect (auto-routed, or confirmed earlier) changed later.
    """

    ACCEPTED = "accepted"
    CORRECTED = "corrected"
    REROUTED = "rerouted"

    @property
    def label(self) -> str:
        return DECISION_LABELS[self]


class Clock(StrEnum):
    """The two deadlines of the 信访工作条例 (calendar days, configurable in service/settings.py)."""

    HAND_OVER = "hand_over"  # registration -> the department accepts it (转送/交办)
    HANDLING = "handling"  # acceptance -> closed (办理), extendable once

    @property
    def label(self) -> str:
        return CLOCK_LABELS[self]


class SortOrder(StrEnum):
    """How a petition list is ordered. The next deadline is the handling due date once accepted, else hand-over."""

    DUE = "due"
    DUE_DESC = "-due"
    RECEIVED = "received"
    RECEIVED_DESC = "-received"


STATUS_LABELS: dict[Status, str] = {
    Status.QUEUED: "待确认",
    Status.ROUTED: "已分流",
    Status.CLAIMED: "已领取",
    Status.ACCEPTED: "承办中",
    Status.RETURNED: "已退回",
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
    Action.ACCEPTED: "受理",
    Action.RETURNED: "退回",
    Action.NOTED: "备注",
    Action.EXTENDED: "延期",
    Action.CLOSED: "办结",
    Action.LINKED: "关联案件",
}
CLOCK_LABELS: dict[Clock, str] = {Clock.HAND_OVER: "转交期限", Clock.HANDLING: "办理期限"}
DECISION_LABELS: dict[Decision, str] = {
    Decision.ACCEPTED: "采纳建议",
    Decision.CORRECTED: "更正",
    Decision.REROUTED: "改派",
}
