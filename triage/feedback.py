"""`triage feedback export`: the clerks' decisions on suggestions as a labelled file for `triage train --feedback`.

One row per petition by default: its latest decision (the final label wins); `--all-decisions`
keeps every decision for auditing. Text is the masked text the store keeps for feedback.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from model.text import spreadsheet_safe
from store import RouteDecision

COLUMNS = (
    "text",
    "domain",
    "department",
    "decision",
    "suggested_domain",
    "suggested_department",
    "auto_routed",
    "decided_at",
    "decided_by",
    "role",
    "model_version",
    "petition_id",
)


def final_decisions(decisions: Iterable[RouteDecision]) -> list[RouteDecision]:
    """The latest decision of each petition, in the order those decisions were made."""
    latest: dict[int, RouteDecision] = {}
    for decision in decisions:
        latest.pop(decision.petition_id, None)
        latest[decision.petition_id] = decision
    return list(latest.values())


def write_decisions(path: Path, decisions: Iterable[RouteDecision]) -> int:
    """Write a UTF-8 CSV (with BOM, so spreadsheets read the Chinese) that `triage train --feedback` reads."""
    count = 0
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for item in decisions:
            writer.writerow(
                [
                    spreadsheet_safe(item.masked_text),
                    item.corrected_domain,
                    item.corrected_department,
                    item.decision.value,
                    item.predicted_domain,
                    item.predicted_department or "",
                    "yes" if item.auto_routed else "no",
                    _iso(item.created_at),
                    spreadsheet_safe(item.actor),
                    item.role.value if item.role else "",
                    item.model_version,
                    item.petition_id,
                ]
            )
            count += 1
    return count


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
