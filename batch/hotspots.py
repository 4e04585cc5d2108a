"""`triage hotspots`: read a file of petitions, find hot-topic clusters, write members and clusters.

Every input row gets a line in the members file (`id,cluster`; cluster empty when the row is in
no cluster, was left out by `--since`, or has no text). The clusters, ranked by heat, go to a
second file beside it (`<name>.clusters.csv`) or, for .xlsx output, to a second sheet.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from model.hotspots import (
    CLUSTER_FIELDS,
    ClusterOptions,
    Hotspot,
    HotspotInput,
    cluster_id,
    cluster_record,
    find_hotspots,
)
from model.text import prepare_text, spreadsheet_safe
from training.io import InputError, read_rows, require_columns

MEMBER_FIELDS = ["id", "cluster"]
CHINA_STANDARD_TIME = timezone(timedelta(hours=8))
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


@dataclass(frozen=True)
class HotspotsOptions:
    text_cols: tuple[str, ...] = ("text",)
    id_col: str | None = None  # default: the row number
    time_col: str | None = None
    petitioner_col: str | None = None
    domain_col: str | None = None
    department_col: str | None = None
    since_days: float | None = None  # keep rows within this many days of the newest row
    encoding: str | None = None
    cluster: ClusterOptions = field(default_factory=ClusterOptions)


@dataclass(frozen=True)
class HotspotsSummary:
    rows: int
    clustered_rows: int
    considered_rows: int
    clusters: list[Hotspot]
    members_path: Path
    clusters_path: Path | None  # None: a second sheet of the members workbook
    seconds: float


def parse_time(value: object) -> datetime | None:
    """ISO 8601 or the usual spreadsheet forms; a time without offset is China Standard Time."""
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value or "").strip()
        if not text:
            return None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            for layout in TIME_FORMATS:
                try:
                    parsed = datetime.strptime(text, layout)
                    break
                except ValueError:
                    continue
            else:
                return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=CHINA_STANDARD_TIME)).astimezone(UTC)


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def read_inputs(path: Path, options: HotspotsOptions) -> list[tuple[str, HotspotInput | None]]:
    """(id, input) per row of the file in order; input None for a row without text or outside --since."""
    columns = [*options.text_cols]
    columns += [c for c in (options.id_col, options.time_col, options.petitioner_col) if c]
    columns += [c for c in (options.domain_col, options.department_col) if c]
    rows: list[tuple[str, str, datetime | None, dict[str, str]]] = []
    for number, row in enumerate(read_rows(path, options.encoding)):
        if number == 0:
            require_columns(row, columns, path)
        values = row.values
        identifier = _text(values.get(options.id_col)) if options.id_col else str(row.number)
        text = "。".join(part for column in options.text_cols if (part := _text(values.get(column))))
        at = parse_time(values.get(options.time_col)) if options.time_col else None
        extra = {
            name: _text(values.get(column))
            for name, column in (
                ("petitioner", options.petitioner_col),
                ("domain", options.domain_col),
                ("department", options.department_col),
            )
            if column
        }
        rows.append((identifier or str(row.number), text, at, extra))
    known = [at for _, _, at, _ in rows if at is not None]
    cutoff = max(known) - timedelta(days=options.since_days) if options.since_days is not None and known else None
    inputs: list[tuple[str, HotspotInput | None]] = []
    for identifier, text, at, extra in rows:
        outside = cutoff is not None and (at is None or at < cutoff)
        if not text or outside:
            inputs.append((identifier, None))
            continue
        inputs.append(
            (
                identifier,
                HotspotInput(
                    key=identifier,
                    text=prepare_text(text),
                    received_at=at,
                    petitioner=extra.get("petitioner") or None,
                    domain=extra.get("domain") or None,
                    department=extra.get("department") or None,
                ),
            )
        )
    return inputs


def clusters_path_for(members: Path) -> Path:
    return members.with_name(f"{members.stem}.clusters{members.suffix}")


def _write_csv(path: Path, fields: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows({key: spreadsheet_safe(value) for key, value in row.items()} for row in rows)


def write_outputs(members_path: Path, members: list[dict[str, str]], spots: list[Hotspot]) -> Path | None:
    """Members file plus clusters (second sheet of an .xlsx, else a `.clusters.csv` beside it)."""
    clusters = [cluster_record(spot) for spot in spots]
    suffix = members_path.suffix.lower()
    if suffix == ".xlsx":
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        for title, fields, rows in (("members", MEMBER_FIELDS, members), ("clusters", CLUSTER_FIELDS, clusters)):
            sheet = workbook.create_sheet(title)
            sheet.append(fields)
            for row in rows:
                sheet.append([spreadsheet_safe(row[field]) for field in fields])
        workbook.save(members_path)
        return None
    if suffix != ".csv":
        raise InputError(f"不支持的输出类型 / unsupported output type {suffix!r}; use .csv or .xlsx")
    _write_csv(members_path, MEMBER_FIELDS, members)
    clusters_path = clusters_path_for(members_path)
    _write_csv(clusters_path, CLUSTER_FIELDS, clusters)
    return clusters_path


def run_hotspots(
    input_path: Path,
    members_path: Path,
    options: HotspotsOptions,
    progress: Callable[[int], object] = lambda _: None,
    now: datetime | None = None,
) -> HotspotsSummary:
    started = time.perf_counter()
    rows = read_inputs(input_path, options)
    considered = [(position, item) for position, (_, item) in enumerate(rows) if item is not None]

    spots = find_hotspots([item for _, item in considered], options.cluster, now, progress)
    cluster_of: dict[int, str] = {}
    for spot in spots:
        for index in spot.indices:
            cluster_of[considered[index][0]] = cluster_id(spot.rank)
    members = [
        {"id": identifier, "cluster": cluster_of.get(position, "")} for position, (identifier, _) in enumerate(rows)
    ]
    clusters_path = write_outputs(members_path, members, spots)
    return HotspotsSummary(
        rows=len(rows),
        clustered_rows=len(cluster_of),
        considered_rows=len(considered),
        clusters=spots,
        members_path=members_path,
        clusters_path=clusters_path,
        seconds=time.perf_counter() - started,
    )
