"""API documentation that works on an intranet: Swagger UI at /docs and ReDoc at /redoc, their
JavaScript, CSS and icon served by this app from the installed `fastapi-offline` package (no CDN,
no Google Fonts)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from service.errors import ApiError

ASSETS = Path(str(resources.files("fastapi_offline") / "static"))
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
PREFIX = "/docs/static"
TITLE = "信访分流 Petition triage API"

docs_router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    """The sub-path a reverse proxy serves the app under (`triage serve --root-path`), so links work behind it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@docs_router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title=f"{TITLE} · Swagger UI",
        swagger_js_url=f"{root}{PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{root}{PREFIX}/favicon.png",
    )


@docs_router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=f"{root}/openapi.json",
        title=f"{TITLE} · ReDoc",
        redoc_js_url=f"{root}{PREFIX}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{PREFIX}/favicon.png",
        with_google_fonts=False,
    )


@docs_router.get(f"{PREFIX}/{{name}}")
def docs_asset(name: str) -> FileResponse:
    """Only the four known files; they change with the package version, so browsers may cache them a day."""
    if name not in ASSET_TYPES:
        raise ApiError(404, "not_found", "文件不存在", "no such file")
    return FileResponse(ASSETS / name, media_type=ASSET_TYPES[name], headers={"Cache-Control": "max-age=86400"})
