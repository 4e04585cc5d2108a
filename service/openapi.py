"""The OpenAPI schema states the limits the service enforces, including those set at run time.

Text length, batch size and total characters come from `Settings`, the department and domain lists
from the taxonomy, so the schema is finished when the app is built rather than at import time.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from model.taxonomy import Taxonomy
from service.settings import Settings

TEXT_SCHEMAS = ("ClassifyIn", "SubmitIn")


def declare_rules(schema: dict[str, Any], settings: Settings, taxonomy: Taxonomy) -> dict[str, Any]:
    components = schema.get("components", {}).get("schemas", {})
    for name in TEXT_SCHEMAS:
        if name in components:
            components[name]["properties"]["text"]["maxLength"] = settings.max_text_chars
    if "BatchIn" in components:
        batch = components["BatchIn"]
        items = batch["properties"]["items"]
        items.update(minItems=1, maxItems=settings.max_batch_items)
        items["items"] = {"$ref": "#/components/schemas/SubmitIn"}
        batch["x-max-total-chars"] = settings.max_batch_chars
    if "RouteIn" in components:
        properties = components["RouteIn"]["properties"]
        properties["department"]["enum"] = list(taxonomy.departments)
        properties["domain"]["anyOf"] = [{"type": "string", "enum": list(taxonomy.domains)}, {"type": "null"}]
    return schema


def install_openapi(app: FastAPI, settings: Settings, taxonomy: Taxonomy) -> None:
    """Build the schema once, on first request, with the rules above filled in."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_rules(build(), settings, taxonomy)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
