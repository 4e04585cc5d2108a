"""Finding petitions: search and filters over the whole store, and the same list as an .xlsx file.

A department key searches only its own queue. Lists carry masked text only (an export may leave
the office's systems), and every text cell of an export is made formula-safe.
"""

from __future__ import annotations

import io
import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from openpyxl import Workbook
from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from model.flags import Flag
from model.office_time import CHINA_STANDARD_TIME
from model.taxonomy import Taxonomy
from model.text import spreadsheet_safe
from service.auth import Principal, check_queue_access
from service.logging import log_event
from service.queues import known_queue
from service.schemas import EARLIEST_DAY, LATEST_DAY, SearchPageOut, Text
from service.views import PREVIEW_CHARS, queue_name, summary_out
from store import Channel, PetitionQuery, PetitionRecord, QueueStore, SortOrder, Status, raised_flags

logger = logging.getLogger("triage.api")

MAX_EXPORT_ROWS = 10_000
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DAY_RANGE: dict[str, Any] = {"x-not-before": EARLIEST_DAY.isoformat(), "x-not-after": LATEST_DAY.isoformat()}


class SearchIn(BaseModel):
    """Query parameters of `GET /v1/petitions` and its export (all optional, all must hold)."""

    q: Text | None = Field(
        None,
        max_length=200,
        description="文本（在脱敏文本中查找）、编号或来源系统编号 / text (in the masked text), number or external id",
    )
    queue: Text | None = Field(None, max_length=64, description="队列 / queue")
    status: list[Status] = Field(
        default_factory=list, description="状态，可多选；缺省为全部未办结 / statuses (default: every open one)"
    )
    channel: Channel | None = Field(None, description="来源渠道 / channel")
    overdue: bool | None = Field(None, description="只看超期（true）或未超期（false）/ overdue on either clock, or not")
    flag: Flag | None = Field(None, description="标记：涉法涉诉（litigation）或集体访（collective）/ raised flag")
    received_from: date | None = Field(
        None,
        description="收件日期起（北京时间，含；1900 年至 9000 年）/ received on or after (CST; 1900 to 9000)",
        json_schema_extra=DAY_RANGE,
    )
    received_to: date | None = Field(
        None,
        description="收件日期止（北京时间，含；1900 年至 9000 年）/ received on or before (CST; 1900 to 9000)",
        json_schema_extra=DAY_RANGE,
    )
    sort: SortOrder = Field(
        SortOrder.DUE, description="due：期限由近到远（退回件在前）；-due；received；-received / order"
    )
    limit: int = Field(50, ge=1, le=200, description="每页件数 / page size")
    offset: int = Field(0, ge=0, le=10_000_000, description="跳过件数 / items to skip")

    @field_validator("received_from", "received_to")
    @classmethod
    def _day_in_range(cls, value: date | None) -> date | None:
        # Days near year 1 or 9999 overflow when their start is converted to UTC (`day_start`).
        if value is not None and not EARLIEST_DAY <= value <= LATEST_DAY:
            raise PydanticCustomError(
                "date_out_of_range", "received_from and received_to must be between 1900 and 9000"
            )
        return value


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, CHINA_STANDARD_TIME).astimezone(UTC)


def petition_query(store: QueueStore, principal: Principal, search: SearchIn, limit: int, offset: int) -> PetitionQuery:
    """The store query for this caller: a department's search is confined to its own queue (403 for another)."""
    if search.queue is not None:
        known_queue(store, search.queue)
        check_queue_access(principal, search.queue)
        queues: tuple[str, ...] = (search.queue,)
    else:
        queues = principal.visible_queues(store.queues)
    return PetitionQuery(
        text=search.q,
        queues=queues if queues != store.queues else (),
        statuses=tuple(search.status),
        channel=search.channel,
        overdue=search.overdue,
        flag=search.flag,
        received_from=day_start(search.received_from) if search.received_from else None,
        received_to=day_start(search.received_to + timedelta(days=1)) - timedelta(microseconds=1)
        if search.received_to
        else None,
        sort=search.sort,
        limit=limit,
        offset=offset,
    )


def search(store: QueueStore, principal: Principal, filters: SearchIn) -> SearchPageOut:
    items, total = store.search(petition_query(store, principal, filters, filters.limit, filters.offset))
    return SearchPageOut(
        total=total, limit=filters.limit, offset=filters.offset, items=[summary_out(item) for item in items]
    )


EXPORT_COLUMNS = (
    "编号",
    "来源系统编号",
    "收件时间",
    "来源渠道",
    "状态",
    "所在队列",
    "领域",
    "责任部门",
    "转交期限",
    "办理期限",
    "超期",
    "承办人",
    "人数",
    "标记",
    "内容摘要（脱敏）",
)


def _local(value: datetime | None) -> str:
    return value.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%d %H:%M") if value else ""


def _overdue_text(petition: PetitionRecord) -> str:
    return "、".join(
        name
        for name, late in (("转交超期", petition.hand_over_overdue), ("办理超期", petition.handling_overdue))
        if late
    )


def export_row(taxonomy: Taxonomy, petition: PetitionRecord) -> list[object]:
    return [
        petition.id,
        petition.external_id or "",
        _local(petition.received_at),
        petition.channel.label,
        petition.status.label,
        queue_name(taxonomy, petition.queue),
        taxonomy.name(petition.domain, "domain") if petition.domain else "",
        taxonomy.name(petition.department, "department") if petition.department else "",
        _local(petition.due_at),
        _local(petition.handling_due_at),
        _overdue_text(petition),
        petition.assignee or "",
        petition.headcount or "",
        "、".join(flag.label for flag in raised_flags(petition.flags)),
        petition.masked_text[: PREVIEW_CHARS * 4],
    ]


def export_xlsx(store: QueueStore, taxonomy: Taxonomy, principal: Principal, filters: SearchIn) -> bytes:
    """The current list (same filters and order, up to 10,000 rows) as an .xlsx workbook."""
    items, total = store.search(petition_query(store, principal, filters, MAX_EXPORT_ROWS, 0))
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("信访件")
    sheet.append(list(EXPORT_COLUMNS))
    for petition in items:
        sheet.append([spreadsheet_safe(value) for value in export_row(taxonomy, petition)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    log_event(logger, logging.INFO, "petition.exported", rows=len(items), total=total, actor=principal.name)
    return buffer.getvalue()
