"""Hot topics: `GET /v1/hotspots` and its .xlsx export (clerks and admins). Thin; see service/hotspots.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from service import hotspots
from service.api.deps import StoreDep, TaxonomyDep, allowed
from service.api.routes.petitions import ERRORS
from service.auth import Permission, Principal
from service.schemas import HotspotsOut
from service.search import XLSX_TYPE

router = APIRouter(prefix="/v1", tags=["hotspots 热点"])
HotspotUser = Annotated[Principal, Depends(allowed(Permission.READ_HOTSPOTS))]
Days = Annotated[int, Query(ge=1, le=366, description="最近天数 / window in days, up to now")]
MinSize = Annotated[int, Query(ge=2, le=1000, description="最小件数 / smallest cluster")]


@router.get("/hotspots", response_model=HotspotsOut, responses=ERRORS, summary="热点（按热度排序）/ Hot-topic clusters")
def list_hotspots(
    store: StoreDep, taxonomy: TaxonomyDep, principal: HotspotUser, days: Days = 30, min_size: MinSize = 3
) -> HotspotsOut:
    """最近 `days` 天收到的信访件中，反映同一小区、项目、商家或平台的聚集件，按热度排序。/ Clusters of the
    petitions received in the last `days` days about one place, project, merchant or platform, hottest first."""
    return hotspots.compute(store, taxonomy, days, min_size)[0]


@router.get(
    "/hotspots/export.xlsx",
    responses={**ERRORS, 200: {"content": {XLSX_TYPE: {}}, "description": "热点与成员两张表 / clusters and members"}},
    summary="导出热点 .xlsx / Export hot topics as .xlsx",
)
def export_hotspots(
    store: StoreDep, taxonomy: TaxonomyDep, principal: HotspotUser, days: Days = 30, min_size: MinSize = 3
) -> Response:
    content = hotspots.export_xlsx(hotspots.compute(store, taxonomy, days, min_size)[1])
    return Response(
        content,
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="hotspots-{days}d.xlsx"'},
    )
