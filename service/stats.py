"""Acceptance of the model's suggestions, per week and suggested department (`GET /v1/stats`).

This is the number an office watches to decide how far to trust auto-routing: how many suggestions
needed review, how many were accepted as they were, corrected, or re-routed after taking effect,
and which corrections recur. Everything is counted in the database (petitions by registration
time, decisions from the `feedback` table the route records), so it survives restarts and covers
every replica; weeks start on Monday at 00:00 China Standard Time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from model.office_time import CHINA_STANDARD_TIME
from model.taxonomy import Taxonomy
from service.schemas import (
    CorrectionOut,
    DepartmentStatsOut,
    MeasureOut,
    StatsCountsOut,
    StatsOut,
    WeekStatsOut,
)
from service.search import day_start
from store import Decision, QueueStore

WEEK = timedelta(days=7)
TOP_CORRECTIONS = 10  # over the window; each department and week lists its top 3
TOP_CORRECTIONS_EACH = 3
NO_DEPARTMENT_NAME = "无部门建议"


class Measure(StrEnum):
    """What is counted; the ids are the fields of `StatsCountsOut`."""

    SUGGESTED = "suggested"
    NEEDS_REVIEW = "needs_review"
    AUTO_ROUTED = "auto_routed"
    ACCEPTED = Decision.ACCEPTED.value
    CORRECTED = Decision.CORRECTED.value
    REROUTED = Decision.REROUTED.value
    REROUTED_AUTO = "rerouted_auto"
    NEEDS_REVIEW_SHARE = "needs_review_share"
    ACCEPTED_SHARE = "accepted_share"

    @property
    def label(self) -> str:
        return MEASURE_LABELS[self]


MEASURE_LABELS: dict[Measure, str] = {
    Measure.SUGGESTED: "建议件数",
    Measure.NEEDS_REVIEW: "需人工分流",
    Measure.AUTO_ROUTED: "自动分流",
    Measure.ACCEPTED: Decision.ACCEPTED.label,
    Measure.CORRECTED: Decision.CORRECTED.label,
    Measure.REROUTED: Decision.REROUTED.label,
    Measure.REROUTED_AUTO: "自动分流后改派",
    Measure.NEEDS_REVIEW_SHARE: "需人工分流占比",
    Measure.ACCEPTED_SHARE: "采纳率",
}

# (week index, suggested department) -> measure -> count; (week, suggested, decided) -> count
Tally = Counter[tuple[int, str | None, Measure]]
Moves = Counter[tuple[int, str | None, str]]


def week_starts(now: datetime, weeks: int) -> list[datetime]:
    """The starts (UTC) of the last `weeks` weeks, this one included, oldest first."""
    today = now.astimezone(CHINA_STANDARD_TIME).date()
    monday = today - timedelta(days=today.weekday())
    return [day_start(monday - WEEK * back) for back in range(weeks - 1, -1, -1)]


def _tally(store: QueueStore, starts: list[datetime], until: datetime) -> tuple[Tally, Moves]:
    tally: Tally = Counter()
    moves: Moves = Counter()
    for found in store.suggestions_by_week(starts, until):
        key = (found.week, found.department)
        tally[(*key, Measure.SUGGESTED)] += found.count
        if found.needs_review:
            tally[(*key, Measure.NEEDS_REVIEW)] += found.count
        elif found.department is not None:
            tally[(*key, Measure.AUTO_ROUTED)] += found.count
    for decided in store.decisions_by_week(starts, until):
        key = (decided.week, decided.suggested)
        tally[(*key, Measure(decided.decision.value))] += decided.count
        if decided.decision == Decision.REROUTED and decided.auto_routed:
            tally[(*key, Measure.REROUTED_AUTO)] += decided.count
        if decided.decision != Decision.ACCEPTED and decided.decided != decided.suggested:
            moves[(decided.week, decided.suggested, decided.decided)] += decided.count
    return tally, moves


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _counts(tally: Tally, keep: Iterable[tuple[int, str | None]]) -> StatsCountsOut:
    wanted = set(keep)
    total: Counter[Measure] = Counter()
    for (week, department, measure), count in tally.items():
        if (week, department) in wanted:
            total[measure] += count
    decided = total[Measure.ACCEPTED] + total[Measure.CORRECTED] + total[Measure.REROUTED]
    return StatsCountsOut(
        suggested=total[Measure.SUGGESTED],
        needs_review=total[Measure.NEEDS_REVIEW],
        auto_routed=total[Measure.AUTO_ROUTED],
        accepted=total[Measure.ACCEPTED],
        corrected=total[Measure.CORRECTED],
        rerouted=total[Measure.REROUTED],
        rerouted_auto=total[Measure.REROUTED_AUTO],
        needs_review_share=_share(total[Measure.NEEDS_REVIEW], total[Measure.SUGGESTED]),
        accepted_share=_share(total[Measure.ACCEPTED], decided),
    )


def _name(taxonomy: Taxonomy, department: str | None) -> str:
    return NO_DEPARTMENT_NAME if department is None else taxonomy.name(department, "department")


def _corrections(
    taxonomy: Taxonomy, moves: Moves, weeks: set[int], departments: set[str | None] | None, top: int
) -> list[CorrectionOut]:
    pairs: Counter[tuple[str | None, str]] = Counter()
    for (week, suggested, decided), count in moves.items():
        if week in weeks and (departments is None or suggested in departments):
            pairs[suggested, decided] += count
    ranked = sorted(pairs.items(), key=lambda item: (-item[1], item[0][0] or "", item[0][1]))
    return [
        CorrectionOut(
            from_department=suggested,
            from_name=_name(taxonomy, suggested),
            to_department=decided,
            to_name=_name(taxonomy, decided),
            count=count,
        )
        for (suggested, decided), count in ranked[:top]
    ]


def _departments(taxonomy: Taxonomy, tally: Tally, moves: Moves, weeks: set[int]) -> list[DepartmentStatsOut]:
    """The departments with anything counted in `weeks`, busiest first."""
    present = {department for week, department, _ in tally if week in weeks}
    rows = [
        DepartmentStatsOut(
            department=department,
            name=_name(taxonomy, department),
            counts=_counts(tally, ((week, department) for week in weeks)),
            top_corrections=_corrections(taxonomy, moves, weeks, {department}, TOP_CORRECTIONS_EACH),
        )
        for department in present
    ]
    return sorted(rows, key=lambda row: (-row.counts.suggested, -row.counts.accepted, row.department or ""))


def compute(store: QueueStore, taxonomy: Taxonomy, weeks: int, now: datetime | None = None) -> StatsOut:
    """Suggestions and the decisions on them over the last `weeks` weeks, per week and department."""
    now = now or datetime.now(UTC)
    starts = week_starts(now, weeks)
    tally, moves = _tally(store, starts, now)
    departments = {department for _, department, _ in tally}
    every_week = set(range(weeks))
    by_week = []
    for index, start in enumerate(starts):
        monday = start.astimezone(CHINA_STANDARD_TIME).date()
        year, number, _ = monday.isocalendar()
        by_week.append(
            WeekStatsOut(
                week=f"{year}-W{number:02d}",
                start=monday,
                end=monday + timedelta(days=6),
                counts=_counts(tally, ((index, department) for department in departments)),
                departments=_departments(taxonomy, tally, moves, {index}),
            )
        )
    return StatsOut(
        weeks=weeks,
        since=starts[0],
        until=now,
        measures=[MeasureOut(id=measure, name=measure.label) for measure in Measure],
        counts=_counts(tally, ((week, department) for week in every_week for department in departments)),
        by_week=by_week,
        by_department=_departments(taxonomy, tally, moves, every_week),
        top_corrections=_corrections(taxonomy, moves, every_week, None, TOP_CORRECTIONS),
    )
