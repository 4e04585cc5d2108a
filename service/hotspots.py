"""Hot topics over the store: clusters of recent petitions (model/hotspots.py), as JSON and .xlsx.

Results are cached per window for a few minutes and recomputed when petitions arrive after that,
because clustering a month of a busy office takes seconds.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from openpyxl import Workbook

from model.hotspots import (
    CLUSTER_FIELDS,
    ClusterOptions,
    Hotspot,
    HotspotInput,
    cluster_id,
    cluster_record,
    find_hotspots,
)
from model.taxonomy import Taxonomy
from model.text import spreadsheet_safe
from service.logging import log_event
from service.schemas import CountOut, HotspotItemOut, HotspotOut, HotspotsOut
from service.views import PREVIEW_CHARS
from store import QueueStore, RecentPetition

logger = logging.getLogger("triage.hotspots")

FORMULA = (
    "热度 = Σ 每位不同信访人 2^(−距其最近一件的天数 / 14)；无联系方式的件各算一人 / heat = sum over distinct "
    "petitioners of 2^(-(days since their latest petition in the cluster) / 14)"
)
CACHE_SECONDS = 300.0
MAX_ITEMS = 100


@dataclass(frozen=True)
class _Cached:
    at: float
    newest_id: int
    answer: HotspotsOut
    spots: list[Hotspot]


_cache: dict[tuple[int, int], _Cached] = {}
_cache_lock = threading.Lock()


def _counts(taxonomy: Taxonomy, counts: dict[str, int], kind: str) -> list[CountOut]:
    return [CountOut(id=key, name=taxonomy.name(key, kind), count=count) for key, count in counts.items()]


def _out(taxonomy: Taxonomy, spot: Hotspot, rows: list[RecentPetition]) -> HotspotOut:
    members = [rows[index] for index in spot.indices]
    return HotspotOut(
        cluster=cluster_id(spot.rank),
        rank=spot.rank,
        label=spot.label,
        target=spot.target,
        complaint=spot.complaint,
        heat=spot.heat,
        size=spot.size,
        petitioners=spot.petitioners,
        first=spot.first,
        last=spot.last,
        domains=_counts(taxonomy, spot.domains, "domain"),
        departments=_counts(taxonomy, spot.departments, "department"),
        top_terms=list(spot.top_terms),
        members=[row.id for row in members],
        items=[
            HotspotItemOut(
                id=row.id,
                received_at=row.received_at,
                status=row.status,
                queue=row.queue,
                preview=row.masked_text[:PREVIEW_CHARS],
            )
            for row in reversed(members[-MAX_ITEMS:])
        ],
    )


def compute(
    store: QueueStore, taxonomy: Taxonomy, days: int, min_size: int = 3, now: datetime | None = None
) -> tuple[HotspotsOut, list[Hotspot]]:
    """Clusters of the petitions received in the last `days` days, hottest first (cached)."""
    now = now or datetime.now(UTC)
    since = now - timedelta(days=days)
    rows = store.received_since(since, now)
    newest = max((row.id for row in rows), default=0)
    key = (days, min_size)
    with _cache_lock:
        cached = _cache.get(key)
    if cached and cached.newest_id == newest and time.monotonic() - cached.at < CACHE_SECONDS:
        return cached.answer, cached.spots
    started = time.perf_counter()
    items = [
        HotspotInput(
            key=str(row.id),
            text=row.masked_text,
            received_at=row.received_at,
            petitioner=row.petitioner_key,
            domain=row.domain,
            department=row.department,
        )
        for row in rows
    ]
    spots = find_hotspots(items, ClusterOptions(min_size=min_size), now=now)
    answer = HotspotsOut(
        days=days,
        since=since,
        petitions=len(rows),
        clustered=sum(spot.size for spot in spots),
        formula=FORMULA,
        clusters=[_out(taxonomy, spot, rows) for spot in spots],
    )
    with _cache_lock:
        _cache[key] = _Cached(time.monotonic(), newest, answer, spots)
    log_event(
        logger,
        logging.INFO,
        "hotspots.computed",
        days=days,
        petitions=len(rows),
        clusters=len(spots),
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return answer, spots


def export_xlsx(spots: list[Hotspot]) -> bytes:
    """Two sheets, as `triage hotspots` writes them: the clusters ranked by heat, and every member."""
    workbook = Workbook(write_only=True)
    clusters = workbook.create_sheet("热点 clusters")
    clusters.append(CLUSTER_FIELDS)
    for spot in spots:
        record = cluster_record(spot)
        clusters.append([spreadsheet_safe(record[field]) for field in CLUSTER_FIELDS])
    members = workbook.create_sheet("成员 members")
    members.append(["id", "cluster"])
    for spot in spots:
        for member in spot.members:
            members.append([int(member), cluster_id(spot.rank)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
