"""Request and response models: the API's public contract (the web console builds on these).

Naming: request bodies end in `In`, responses in `Out`. Descriptions are Chinese then English. Add
fields rather than renaming or removing them. Status, channel, role and action are the store's
enums (store/vocabulary.py), so the OpenAPI schema lists their values.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from model.flags import Flag
from model.text import is_blank, without_nul
from store import Action, Channel, Role, Status

# Not blank: at least one character that is neither whitespace nor invisible (NUL, zero-width, BOM...).
# Declared for clients in the schema; `model.text.is_blank` is the rule the service applies.
NOT_BLANK_PATTERN = (
    r"[^\s\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u180e"
    r"\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]"
)
NOT_BLANK: dict[str, Any] = {"minLength": 1, "pattern": NOT_BLANK_PATTERN}
# Oldest receipt date accepted: earlier dates are typing errors, and dates near year 1 overflow.
EARLIEST_RECEIPT = datetime(1900, 1, 1, tzinfo=timezone(timedelta(hours=8)))
LATEST_YEAR = 9000
# The date filters' range: the dates received_at may hold, and far enough from year 1 and 9999 that a day's
# start in UTC (or the day after the last) cannot overflow.
EARLIEST_DAY = EARLIEST_RECEIPT.date()
LATEST_DAY = date(LATEST_YEAR, 12, 31)


def _without_nul(value: Any) -> Any:
    """NUL dropped (`model.text.without_nul`): PostgreSQL's DataError on one lost a whole batch."""
    return without_nul(value) if isinstance(value, str) else value


# Every string a request carries (bodies and query parameters): petition text, names, addresses, notes,
# reasons, ids, search text. Dropping NUL before the field's own checks means a NUL-only value is
# blank or too short, as an empty one is, and no NUL ever reaches the database.
Text = Annotated[str, BeforeValidator(_without_nul)]

EXAMPLE_TEXT = (
    "我于2022年在某楼盘购买商品房，合同约定2023年6月交房，至今仍未交付，开发商拒不答复，请求督促开发商尽快交房。"
)


def _not_blank(
    value: str, code: str = "empty_text", message_en: str = "text must not be empty or whitespace only"
) -> str:
    if is_blank(value):
        raise PydanticCustomError(code, message_en)
    return value


class TextIn(BaseModel):
    text: Text = Field(
        description="信访内容原文（不能为空，长度上限见 maxLength，由 TRIAGE_MAX_TEXT_CHARS 配置）/ petition text "
        "as received (not blank; at most maxLength characters, set by TRIAGE_MAX_TEXT_CHARS)",
        examples=[EXAMPLE_TEXT],
        json_schema_extra=NOT_BLANK,
    )

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        return _not_blank(value)


class ClassifyIn(TextIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{"text": EXAMPLE_TEXT}]})

    petitioner_contact: Text | None = Field(
        None,
        max_length=200,
        description="信访人联系方式（手机号等），只用于识别重复信访，仅保存其加密散列 / the petitioner's "
        "contact (phone, e-mail); used only to recognise repeat petitions, stored only as a keyed hash",
        examples=["13800000001"],
    )


class SubmitIn(TextIn):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "text": EXAMPLE_TEXT,
                    "channel": "web",
                    "received_at": "2026-03-02T09:30:00+08:00",
                    "external_id": "XF-2026-000123",
                }
            ]
        }
    )

    channel: Channel = Field(description="来源渠道：来信、来访、网上、电话 / intake channel")
    received_at: datetime | None = Field(
        None,
        description="收件时间，缺省为当前时间；无时区时按北京时间；不得早于 1900 年，不得晚于当前时间 / when the "
        "office received it (default now; a time without offset is read as China Standard Time, UTC+8); not "
        "before 1900 and not in the future",
        json_schema_extra={"x-not-before": EARLIEST_RECEIPT.isoformat(), "x-not-after": "now"},
    )
    external_id: Text | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="来源系统编号，重复提交返回原件 / id in the sending system; a repeat returns the original",
    )
    petitioner_name: Text | None = Field(
        None, max_length=200, description="信访人姓名（不写入日志）/ petitioner's name (never logged)"
    )
    petitioner_contact: Text | None = Field(
        None, max_length=200, description="联系方式（不写入日志）/ petitioner's contact (never logged)"
    )
    headcount: int | None = Field(
        None, ge=1, le=100_000, description="人数，5 人以上为集体访 / number of petitioners (collective from 5)"
    )
    address: Text | None = Field(None, max_length=500, description="地址 / address")

    @field_validator("received_at")
    @classmethod
    def _received_in_range(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return value
        aware = value if value.tzinfo is not None else value.replace(tzinfo=EARLIEST_RECEIPT.tzinfo)
        # Compare years first: converting a datetime near year 1 (or 9999) to another offset overflows.
        if not EARLIEST_RECEIPT.year <= value.year <= LATEST_YEAR or aware < EARLIEST_RECEIPT:
            raise PydanticCustomError("received_out_of_range", "received_at must be between 1900 and now")
        return aware


class BatchIn(BaseModel):
    items: list[Any] = Field(
        description="待提交的信访件，每件单独校验（件数上限见 maxItems，总字数上限见 x-max-total-chars）/ "
        "petitions, each validated on its own (at most maxItems items and x-max-total-chars characters in all)"
    )


class RouteIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"department": "housing", "domain": "real_estate", "note": "确认住建部门办理"}]}
    )

    department: Text = Field(description="责任部门编号 / responsible department id", examples=["housing"])
    domain: Text | None = Field(
        None, description="领域编号（更正时填写）/ domain id, when correcting it", examples=["real_estate"]
    )
    note: Text | None = Field(None, max_length=2_000, description="备注 / note for the history")


class LinkIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"case_id": 12, "note": "同一信访人就同一事项重复来信"}]})

    case_id: int = Field(ge=1, le=2**63 - 1, description="已有案件（信访件）编号 / id of the existing case")
    note: Text | None = Field(None, max_length=2_000, description="备注 / note for both histories")


class CloseIn(BaseModel):
    resolution: Text = Field(
        max_length=5_000,
        description="办理结果（不能为空）/ how it was resolved (not blank)",
        examples=["已转住建局督办，开发商承诺月底交房。"],
        json_schema_extra=NOT_BLANK,
    )
    reply_summary: Text | None = Field(
        None,
        max_length=5_000,
        description="答复信访人的内容摘要 / summary of the reply to the petitioner",
        examples=["已告知信访人开发商承诺月底交房，逾期将依法处理。"],
    )

    @field_validator("resolution")
    @classmethod
    def _resolution_not_blank(cls, value: str) -> str:
        return _not_blank(value, "empty_resolution", "resolution must not be empty or whitespace only")


class AcceptIn(BaseModel):
    note: Text | None = Field(None, max_length=2_000, description="备注 / note for the history")


class ReasonIn(BaseModel):
    reason: Text = Field(
        max_length=2_000,
        description="理由（不能为空）/ reason (not blank)",
        examples=["不属于本部门职责，应由自然资源局办理"],
        json_schema_extra=NOT_BLANK,
    )

    @field_validator("reason")
    @classmethod
    def _reason_not_blank(cls, value: str) -> str:
        return _not_blank(value, "empty_reason", "reason must not be empty or whitespace only")


class NoteIn(BaseModel):
    note: Text = Field(
        max_length=2_000,
        description="备注（不能为空）/ note (not blank)",
        examples=["已电话联系信访人"],
        json_schema_extra=NOT_BLANK,
    )

    @field_validator("note")
    @classmethod
    def _note_not_blank(cls, value: str) -> str:
        return _not_blank(value, "empty_note", "note must not be empty or whitespace only")


class ExtendIn(ReasonIn):
    days: int = Field(
        ge=1,
        le=3_650,
        description="延长天数（不超过配置的上限，默认 30）/ days to add (at most the configured maximum)",
    )


class ClaimIn(BaseModel):
    lease_seconds: int | None = Field(
        None,
        ge=1,
        le=86_400,
        description="租约秒数，到期未办结则退回队列 / lease; the item returns to the queue "
        "when it expires (default from configuration)",
    )
    worker: Text | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="领取人标识（默认密钥名）/ worker label (default: the key's name)",
    )


# -- responses ------------------------------------------------------------------------------------


class LabelScoreOut(BaseModel):
    label: str = Field(description="标签编号 / label id")
    name: str = Field(description="中文名称 / Chinese name")
    confidence: float = Field(description="概率 / calibrated probability")


class HeadOut(BaseModel):
    label: str = Field(description="预测标签 / predicted label id", examples=["real_estate"])
    name: str = Field(description="中文名称 / Chinese name", examples=["房地产"])
    confidence: float = Field(description="置信度 / calibrated probability", examples=[0.93])
    needs_review: bool = Field(description="低于阈值需人工复核 / below the head's threshold")
    threshold: float | None = Field(None, description="自动分流阈值 / auto-routing threshold")
    ranking: list[LabelScoreOut] = Field(description="前三名 / top 3 labels")


class TermOut(BaseModel):
    term: str = Field(description="关键词（脱敏文本的子串）/ term, a substring of masked_text")
    weight: float = Field(description="对预测领域的贡献 / contribution toward the predicted domain")


class FlagOut(BaseModel):
    flag: Flag = Field(description="标记编号 / flag id", examples=["litigation"])
    label: str = Field(description="中文名称 / Chinese label", examples=["涉法涉诉"])
    probability: float = Field(description="模型概率 / the flag model's probability")
    hint: str | None = Field(
        None, description="处理提示（涉法涉诉：诉访分离，引导走法定途径）/ what to do (litigation: legal channels)"
    )


class PredictionOut(BaseModel):
    model_version: str = Field(description="模型版本 / model version")
    domain: HeadOut
    department: HeadOut | None = Field(
        description="责任部门（模型无部门头时为空）/ department head (null when the model has none)"
    )
    needs_review: bool = Field(description="是否需人工分流 / goes to manual triage")
    explanation: list[TermOut] = Field(description="影响判断的关键词 / terms that drove the domain prediction")
    flags: list[FlagOut] = Field(
        default_factory=list,
        description="标记：涉法涉诉、集体访（只列出命中的；模型版本无标记模型时为空）/ raised flags: litigation, "
        "collective (only those raised; empty when the model version has no flag model)",
    )


class SimilarOut(BaseModel):
    id: int = Field(description="信访件编号 / petition id")
    score: float = Field(description="相似度（0-1）/ similarity, cosine of idf-weighted character bigrams")
    status: Status
    queue: str
    received_at: datetime
    same_petitioner: bool = Field(False, description="同一信访人 / from the same petitioner")


class RelatedOut(BaseModel):
    similar: list[SimilarOut] = Field(
        default_factory=list,
        description="可能重复：相同事项的已有信访件（最多 5 件，相似度从高到低）/ earlier petitions about "
        "the same matter, most similar first (at most 5)",
    )
    repeat_of: int | None = Field(
        None,
        description="重复信访：同一信访人就同一事项的已有信访件 / the earlier petition this repeats (same "
        "matter, same petitioner)",
    )


class ClassifyOut(PredictionOut, RelatedOut):
    suggested_queue: str = Field(description="建议队列 / queue it would be routed to", examples=["housing"])
    masked_text: str = Field(
        description="脱敏文本（保留原有标点），用于高亮关键词 / the text as written with personal data "
        "masked, for highlighting the explanation terms"
    )


class SubmitOut(RelatedOut):
    id: int = Field(description="信访件编号 / petition id")
    created: bool = Field(description="false 表示重复提交，返回原件 / false: a repeat, the original is returned")
    external_id: str | None
    status: Status
    queue: str = Field(description="所在队列 / current queue")
    received_at: datetime
    due_at: datetime = Field(
        description="转交责任部门的期限（收件后 15 日）/ deadline to hand it to the "
        "responsible department (received + 15 days)"
    )
    overdue: bool
    suggestion: PredictionOut = Field(description="模型建议 / the model's suggested route")


class BatchItemOut(BaseModel):
    index: int = Field(description="在请求中的位置 / position in the request")
    ok: bool
    petition: SubmitOut | None = None
    error: dict[str, Any] | None = Field(None, description="失败原因（同错误格式）/ why it failed (error shape)")


class BatchOut(BaseModel):
    received: int
    created: int
    duplicates: int
    failed: int
    items: list[BatchItemOut]


class HistoryOut(BaseModel):
    at: datetime
    actor: str = Field(description="操作人（密钥名）/ who (API key name)")
    role: Role
    action: Action = Field(description="登记、领取、分流、受理、退回、备注、延期、办结 / what happened")
    from_status: Status | None
    to_status: Status | None
    from_queue: str | None
    to_queue: str | None
    note: str | None
    details: dict[str, Any]


class LeaseOut(BaseModel):
    owner: str
    claimed_at: datetime
    expires_at: datetime


class RouteOut(BaseModel):
    domain: str | None = Field(description="当前领域 / current domain")
    department: str | None = Field(description="当前责任部门 / current department")
    routed_at: datetime | None = Field(description="人工确认时间 / when a clerk confirmed the route")
    routed_by: str | None
    handed_over_at: datetime | None = Field(
        description="转交责任部门时间（确认分流或部门领取）/ when it reached the responsible department"
    )


class PetitionerOut(BaseModel):
    masked: bool = Field(description="是否已脱敏（部门在转交前只能看到脱敏信息）/ masked for this caller")
    name: str | None
    contact: str | None
    headcount: int | None
    address: str | None


class ExtensionOut(BaseModel):
    days: int
    reason: str | None
    extended_at: datetime | None


class PetitionOut(RelatedOut):
    id: int
    external_id: str | None
    channel: Channel
    received_at: datetime
    due_at: datetime = Field(description="转交期限（收件后 15 日）/ hand-over deadline (received + 15 days)")
    handling_due_at: datetime | None = Field(
        description="办理期限（受理后 60 日，含延期）/ handling deadline (accepted + 60 days, extension included)"
    )
    overdue: bool = Field(description="任一期限已超期 / overdue on either clock")
    hand_over_overdue: bool = Field(
        description="超过转交期限仍未被部门受理 / past the hand-over deadline, not yet accepted by a department"
    )
    handling_overdue: bool = Field(description="超过办理期限仍未办结 / past the handling deadline, not closed")
    accepted_at: datetime | None = Field(description="部门受理时间 / when the department accepted it")
    assignee: str | None = Field(description="承办人（受理的密钥名）/ who accepted it (key name)")
    extension: ExtensionOut | None = Field(description="延期（只能一次）/ the extension, if any")
    returned_at: datetime | None = Field(description="最近一次退回时间 / when a department last returned it")
    petitioner: PetitionerOut
    status: Status
    queue: str
    queue_name: str = Field(description="队列中文名 / queue name in Chinese")
    text_visible: bool = Field(description="当前角色能否查看原文 / whether this caller may see the raw text")
    text: str | None = Field(description="原文（无权限时为空）/ raw text, null when not visible")
    masked_text: str = Field(description="脱敏文本 / masked text (explanation terms are substrings)")
    prediction: PredictionOut
    route: RouteOut
    lease: LeaseOut | None
    resolution: str | None
    reply_summary: str | None = Field(description="答复信访人摘要 / reply summary for the petitioner")
    closed_at: datetime | None
    closed_by: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    history: list[HistoryOut]
    linked_case: int | None = Field(None, description="已关联的案件 / the existing case a clerk linked this to")


class PetitionSummaryOut(BaseModel):
    id: int
    external_id: str | None
    channel: Channel
    received_at: datetime
    due_at: datetime
    handling_due_at: datetime | None
    overdue: bool
    hand_over_overdue: bool
    handling_overdue: bool
    assignee: str | None
    returned_at: datetime | None
    headcount: int | None
    status: Status
    queue: str
    domain: str | None
    department: str | None
    needs_review: bool
    domain_confidence: float
    department_confidence: float | None
    preview: str = Field(description="脱敏文本前 80 字 / first 80 characters of the masked text")
    lease: LeaseOut | None
    flags: list[Flag] = Field(default_factory=list, description="命中的标记 / raised flags (ids)")


class SearchPageOut(BaseModel):
    total: int = Field(description="符合条件的件数 / how many match")
    limit: int
    offset: int
    items: list[PetitionSummaryOut]


class QueuePageOut(BaseModel):
    queue: str
    name: str
    total: int
    limit: int
    offset: int
    items: list[PetitionSummaryOut]


class QueueCountsOut(BaseModel):
    queue: str
    name: str
    queued: int = Field(description="待领取（未确认分流）/ waiting, route not yet confirmed")
    routed: int = Field(description="已确认分流、待领取 / route confirmed, waiting")
    claimed: int = Field(description="已领取（租约有效）/ claimed with a live lease")
    accepted: int = Field(description="承办中（部门已受理）/ accepted by the department")
    returned: int = Field(description="已退回人工分流 / returned to manual triage")
    overdue: int = Field(description="已超期（任一期限）/ overdue on either clock")
    hand_over_overdue: int = Field(description="转交超期 / past the hand-over deadline")
    handling_overdue: int = Field(description="办理超期 / past the handling deadline")
    open: int = Field(description="未办结合计 / all open")
    litigation: int = Field(0, description="其中涉法涉诉 / of them flagged litigation (涉法涉诉)")
    collective: int = Field(0, description="其中集体访 / of them flagged collective (集体访)")


class QueuesOut(BaseModel):
    queues: list[QueueCountsOut]


class LabelNameOut(BaseModel):
    label: str
    name: str


class HeadInfoOut(BaseModel):
    labels: list[LabelNameOut]
    threshold: float


class ModelOut(BaseModel):
    version: str
    created_at: str
    loaded_at: datetime
    heads: dict[str, HeadInfoOut] = Field(description="各预测头的标签与阈值 / labels and threshold per head")
    thresholds: dict[str, float]
    metrics: dict[str, Any] = Field(description="留出集与交叉验证指标 / held-out and out-of-fold metrics")
    training_data: dict[str, Any]
    library_versions: dict[str, str]
    flags: dict[str, Any] = Field(
        default_factory=dict,
        description="标记模型（涉法涉诉、集体访）的留出集精确率与召回率；无标记模型时为空 / the flag model's "
        "held-out precision and recall; empty for a version without flags",
    )


class ReloadOut(BaseModel):
    previous_version: str
    version: str
    changed: bool


class HealthOut(BaseModel):
    status: str = Field(examples=["ok"])


class ReadyOut(BaseModel):
    status: str = Field(examples=["ready"])
    model_version: str | None
    database: bool


class ErrorInfoOut(BaseModel):
    code: str = Field(description="稳定的英文错误编号 / stable error id", examples=["empty_text"])
    message: str = Field(description="中文说明 / message in Chinese", examples=["信访内容不能为空"])
    message_en: str = Field(
        description="英文说明 / message in English", examples=["text must not be empty or whitespace only"]
    )
    details: Any = None


class ErrorOut(BaseModel):
    error: ErrorInfoOut


class CountOut(BaseModel):
    id: str
    name: str
    count: int


class HotspotItemOut(BaseModel):
    id: int
    received_at: datetime
    status: Status
    queue: str
    preview: str = Field(description="脱敏文本前 80 字 / first 80 characters of the masked text")


class HotspotOut(BaseModel):
    cluster: str = Field(description="热点编号（按热度排名）/ cluster id, by rank", examples=["H0001"])
    rank: int
    label: str = Field(
        description="标签：对象 + 主要诉求 / named target and main complaint", examples=["锦绣华庭 逾期交房"]
    )
    target: str = Field(description="反映对象（小区、项目、商家、平台）/ the named target")
    complaint: str = Field(description="主要诉求 / main complaint")
    heat: float = Field(description="热度 / heat score (see `formula`)")
    size: int = Field(description="件数 / petitions")
    petitioners: int = Field(description="不同信访人数（无联系方式的件各算一人）/ distinct petitioners")
    first: datetime | None
    last: datetime | None
    domains: list[CountOut] = Field(description="领域分布 / domain mix")
    departments: list[CountOut] = Field(description="部门分布 / department mix")
    top_terms: list[str] = Field(description="高频词 / terms most members share")
    members: list[int] = Field(description="全部成员编号（按收件时间）/ all member ids, oldest first")
    items: list[HotspotItemOut] = Field(description="最新的成员（最多 100 件）/ newest members (at most 100)")


class HotspotsOut(BaseModel):
    days: int
    since: datetime
    petitions: int = Field(description="参与聚类的件数 / petitions received in the window")
    clustered: int = Field(description="属于某个热点的件数 / petitions in some cluster")
    formula: str = Field(description="热度计算公式 / how heat is computed")
    clusters: list[HotspotOut]


class MeasureOut(BaseModel):
    id: str = Field(
        description="稳定编号（即统计字段名）/ stable id, the field name in `counts`", examples=["accepted"]
    )
    name: str = Field(description="中文名称 / Chinese label", examples=["采纳建议"])


class StatsCountsOut(BaseModel):
    suggested: int = Field(description="登记时给出建议的件数 / petitions registered with a suggestion")
    needs_review: int = Field(description="其中需人工分流 / of which needed review (manual triage)")
    auto_routed: int = Field(description="其中自动分流 / of which went straight to the department")
    accepted: int = Field(description="采纳建议（含确认自动分流）/ suggestions accepted as is")
    corrected: int = Field(description="人工分流时更正 / suggestions under review routed elsewhere")
    rerouted: int = Field(description="分流后改派 / routes in effect changed later")
    rerouted_auto: int = Field(description="其中自动分流后改派 / of which had been auto-routed")
    needs_review_share: float | None = Field(
        description="需人工分流占比（无建议时为 null）/ needs_review / suggested (null when none)"
    )
    accepted_share: float | None = Field(
        description="采纳率：采纳 /（采纳+更正+改派）/ accepted / (accepted + corrected + rerouted)"
    )


class CorrectionOut(BaseModel):
    from_department: str | None = Field(description="建议部门（null：模型无部门建议）/ suggested department")
    from_name: str = Field(description="建议部门名称 / its Chinese name")
    to_department: str = Field(description="改为部门 / department decided")
    to_name: str = Field(description="改为部门名称 / its Chinese name")
    count: int


class DepartmentStatsOut(BaseModel):
    department: str | None = Field(description="建议部门（null：模型无部门建议）/ suggested department id")
    name: str = Field(description="部门名称 / Chinese name")
    counts: StatsCountsOut
    top_corrections: list[CorrectionOut] = Field(description="最常见的更正（建议 → 改为）/ most frequent corrections")


class WeekStatsOut(BaseModel):
    week: str = Field(description="ISO 周 / ISO week", examples=["2026-W48"])
    start: date = Field(description="周一（北京时间）/ Monday, China Standard Time")
    end: date = Field(description="周日 / Sunday")
    counts: StatsCountsOut
    departments: list[DepartmentStatsOut] = Field(description="按建议部门 / by suggested department")


class StatsOut(BaseModel):
    weeks: int = Field(description="周数（含本周）/ weeks, this one included")
    since: datetime = Field(description="首周周一 0 时 / start of the first week")
    until: datetime = Field(description="统计截至 / counted up to")
    measures: list[MeasureOut] = Field(description="各统计项的中文名称 / Chinese labels of the measures")
    counts: StatsCountsOut = Field(description="全部合计 / all weeks and departments")
    by_week: list[WeekStatsOut] = Field(description="按周（由早到晚）/ per week, oldest first")
    by_department: list[DepartmentStatsOut] = Field(description="按建议部门合计 / per suggested department")
    top_corrections: list[CorrectionOut] = Field(description="最常见的更正 / most frequent corrections")
