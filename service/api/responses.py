"""A response that is the route's own schema object, serialised once.

For a route that returns a schema object, FastAPI validates it against `response_model` again and then
serialises it; for a plain `def` route it does the validation in a second trip through the thread pool.
The hot routes (classify, submit) build their answer from validated schema classes already, so they
return `SchemaResponse(answer)`: pydantic's serialiser writes the JSON bytes once. `response_model` stays
on the route for the OpenAPI document. `tests/test_api.py` holds the two to the same JSON.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel


class SchemaResponse(Response):
    media_type = "application/json"

    def __init__(self, content: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(content, status_code=status_code, headers=headers)

    def render(self, content: Any) -> bytes:
        body: bytes = content.__pydantic_serializer__.to_json(content)
        return body
