"""The clerk console: one page at `/`, its static files under `/console/static/`, and two small
JSON helpers the page needs that the /v1 API does not offer: who the key belongs to, and the
vocabulary (taxonomy, status/channel/role/action labels, the permission map) so that
`static/console.js` keeps no copies of its own.

The page itself needs no key; everything it shows comes from the API with the key the clerk
typed in (kept in sessionStorage, sent as `X-API-Key`, never in a URL).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from model.flags import Flag
from service.api.deps import CurrentUser, SettingsDep, TaxonomyDep
from service.auth import permission_map
from service.errors import ApiError
from store import MANUAL_TRIAGE, MANUAL_TRIAGE_NAME, Action, Channel, Role, Status

STATIC_DIR = Path(str(resources.files("service") / "static"))
# The page and its assets change with the service; a stale cached copy must not talk to a newer API.
NO_CACHE = {"Cache-Control": "no-cache"}

console_router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(
        STATIC_DIR / name,
        media_type="text/html; charset=utf-8",
        headers={
            **NO_CACHE,
            # Everything is same-origin: no CDN, no inline script, nothing from the internet.
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


@console_router.api_route("/", methods=["GET", "HEAD"])
def console_page() -> FileResponse:
    return _page("index.html")


@console_router.api_route("/hotspots", methods=["GET", "HEAD"])
def hotspots_page() -> FileResponse:
    """热点: the top clusters as a bar chart, a drill-down into one, and the .xlsx export."""
    return _page("hotspots.html")


@console_router.get("/console/me")
def whoami(principal: CurrentUser, taxonomy: TaxonomyDep) -> dict[str, Any]:
    """Who the key belongs to, so the page can show the role (the /v1 API has no such endpoint)."""
    department = principal.department
    return {
        "name": principal.name,
        "role": principal.role,
        "role_name": principal.role.label,
        "department": department,
        "department_name": taxonomy.name(department, "department") if department else None,
    }


@console_router.get("/console/taxonomy.json")
def taxonomy_json(principal: CurrentUser, taxonomy: TaxonomyDep, settings: SettingsDep) -> dict[str, Any]:
    """The page's vocabulary: domains and departments with Chinese names (for the correction and
    re-route lists), the labels of statuses, channels, roles and history actions, the manual triage
    queue, the permission map by role, and the text length limit."""
    return {
        "domains": [
            {"id": label.id, "name": label.name, "departments": list(taxonomy.domain_departments.get(label.id, ()))}
            for label in taxonomy.domains.values()
        ],
        "departments": [{"id": label.id, "name": label.name} for label in taxonomy.departments.values()],
        "manual_triage": {"id": MANUAL_TRIAGE, "name": MANUAL_TRIAGE_NAME},
        "statuses": {status.value: status.label for status in Status},
        "channels": {channel.value: channel.label for channel in Channel},
        "roles": {role.value: role.label for role in Role},
        "actions": {action.value: action.label for action in Action},
        "flags": {flag.value: {"label": flag.label, "hint": flag.hint} for flag in Flag},
        "permissions": permission_map(),
        "max_text_chars": settings.max_text_chars,
        "deadlines": {
            "hand_over_days": settings.due_days,
            "handling_days": settings.handling_days,
            "max_extension_days": settings.max_extension_days,
        },
    }


STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@console_router.get("/console/static/{name}")
def console_static(name: str) -> FileResponse:
    """The page's CSS and JavaScript: only files that exist directly in service/static/."""
    path = STATIC_DIR / name
    media_type = STATIC_TYPES.get(path.suffix)
    if "/" in name or name.startswith(".") or media_type is None or not path.is_file():
        raise ApiError(404, "not_found", "文件不存在", "no such file")
    return FileResponse(path, media_type=media_type, headers=NO_CACHE)
