"""One error shape for every failure: `{"error": {"code", "message", "message_en", "details?"}}`.

Codes are stable English ids that clients switch on; messages are for people (Chinese first).
Validation details never echo the submitted input back, because it may be petition text.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.logging import log_event
from store import DatabaseUnavailable, RejectedValue

logger = logging.getLogger("triage.errors")


class ApiError(Exception):
    """Raised by handlers and dependencies; rendered as the standard error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        message_en: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.message_en = message_en
        self.details = details
        self.headers = headers


def error_body(code: str, message: str, message_en: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "message_en": message_en}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    message_en: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, message_en, details), status_code=status, headers=headers)


# Validation error types we raise ourselves (pydantic custom errors) or single out, with messages.
VALIDATION_MESSAGES: dict[str, tuple[str, str]] = {
    "empty_text": ("信访内容不能为空", "text must not be empty or whitespace only"),
    "empty_resolution": ("办理结果不能为空", "resolution must not be empty or whitespace only"),
    "empty_reason": ("理由不能为空", "reason must not be empty or whitespace only"),
    "empty_note": ("备注不能为空", "note must not be empty or whitespace only"),
    "received_out_of_range": ("收件时间超出范围（1900 年至今）", "received_at must be between 1900 and now"),
    "date_out_of_range": (
        "收件日期超出范围（1900 年至 9000 年）",
        "received_from and received_to must be between 1900 and 9000",
    ),
    "text_too_long": ("信访内容过长", "text is longer than the allowed maximum"),
    "batch_too_large": ("批量提交条目过多", "too many items in one batch"),
    "batch_empty": ("批量提交不能为空", "a batch needs at least one item"),
    "received_in_future": ("收件时间不能晚于当前时间", "received_at must not be in the future"),
    "missing": ("缺少必填字段", "a required field is missing"),
}

DATABASE_RETRY_AFTER_SECONDS = 5

HTTP_CODES: dict[int, tuple[str, str, str]] = {
    404: ("not_found", "接口不存在", "no such endpoint"),
    405: ("method_not_allowed", "不支持该请求方法", "method not allowed on this endpoint"),
}


def validation_details(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Field path, error type and English message only: no `input`, no `ctx` with user data."""
    return [
        {
            "field": ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body",
            "type": error.get("type", "value_error"),
            "message_en": str(error.get("msg", "")),
        }
        for error in errors
    ]


def validation_error(errors: Sequence[Mapping[str, Any]]) -> ApiError:
    """Turn pydantic errors into one ApiError; a single known cause gets its own stable code."""
    types = [
        "text_too_long"
        if error.get("type") == "string_too_long" and tuple(error.get("loc", ()))[-1:] == ("text",)
        else error.get("type", "")
        for error in errors
    ]
    if "json_invalid" in types:
        return ApiError(
            400, "invalid_json", "请求体不是有效的 JSON", "request body is not valid JSON", validation_details(errors)
        )
    known = next((kind for kind in types if kind in VALIDATION_MESSAGES), None)
    if known is not None:
        message, message_en = VALIDATION_MESSAGES[known]
        return ApiError(422, known, message, message_en, validation_details(errors))
    return ApiError(
        422, "validation_error", "请求内容不符合要求", "request failed validation", validation_details(errors)
    )


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiError)
        return error_response(error.status, error.code, error.message, error.message_en, error.details, error.headers)

    async def on_validation(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        api_error = validation_error(list(error.errors()))
        return error_response(
            api_error.status, api_error.code, api_error.message, api_error.message_en, api_error.details
        )

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        code, message, message_en = HTTP_CODES.get(
            error.status_code, ("http_error", "请求无法处理", "the request could not be handled")
        )
        return error_response(
            error.status_code, code, message, message_en, headers=dict(error.headers) if error.headers else None
        )

    async def on_database_unavailable(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, DatabaseUnavailable)
        log_event(
            logger,
            logging.ERROR,
            "database.unavailable",
            error_type=str(error.args[0]) if error.args else type(error).__name__,
            path_template=_route_path(request),
        )
        return error_response(
            503,
            "database_unavailable",
            "数据库暂时不可用，请稍后重试（本次请求未保存任何内容）",
            "the database is unavailable; nothing was saved, please retry",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )

    async def on_rejected_value(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RejectedValue)
        log_event(
            logger,
            logging.WARNING,
            "database.rejected_value",
            error_type=str(error.args[0]) if error.args else type(error).__name__,
            path_template=_route_path(request),
        )
        return error_response(
            422,
            "rejected_value",
            "数据库不接受请求中的某个值（本次请求未保存任何内容）",
            "the database rejected a value in the request; nothing was saved",
        )

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        # Exception messages can carry SQL parameters (petition text): log the type and frames only.
        frames = [
            f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}:{frame.name}"
            for frame in traceback.extract_tb(error.__traceback__)[-8:]
        ]
        log_event(
            logger,
            logging.ERROR,
            "request.unhandled_error",
            error_type=type(error).__name__,
            frames=frames,
            path_template=_route_path(request),
        )
        return error_response(
            500, "internal_error", "服务器内部错误，请稍后重试", "internal server error; please retry later"
        )

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(DatabaseUnavailable, on_database_unavailable)
    app.add_exception_handler(RejectedValue, on_rejected_value)
    app.add_exception_handler(Exception, on_unexpected)


def _route_path(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")
