"""Acceptance of the suggestions: `GET /v1/stats` (clerks and admins). Thin; see service/stats.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service import stats
from service.api.deps import StoreDep, TaxonomyDep, allowed
from service.api.routes.petitions import ERRORS
from service.auth import Permission, Principal
from service.schemas import StatsOut

router = APIRouter(prefix="/v1", tags=["stats 统计"])
StatsUser = Annotated[Principal, Depends(allowed(Permission.READ_STATS))]
Weeks = Annotated[int, Query(ge=1, le=53, description="周数（含本周）/ weeks, this one included")]


@router.get("/stats", response_model=StatsOut, responses=ERRORS, summary="建议采纳情况 / Acceptance of suggestions")
def acceptance(store: StoreDep, taxonomy: TaxonomyDep, principal: StatsUser, weeks: Weeks = 8) -> StatsOut:
    """按周（周一起，北京时间）和建议部门统计：登记时的建议件数、需人工分流占比、采纳建议、人工分流时更正、分流后改派
    （其中自动分流后改派），以及最常见的更正（建议部门 → 改为部门）。部门密钥无权查看（403）。/ Per week (from
    Monday, China Standard Time) and suggested department: suggestions made at registration, the share
    needing review, suggestions accepted as is, corrected under review, re-routed after taking effect (of
    which auto-routed), and the most frequent corrections (suggested -> decided). Department keys get 403."""
    return stats.compute(store, taxonomy, weeks)
