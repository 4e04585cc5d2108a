"""The FastAPI application factory: `uvicorn service.app:create_app --factory`.

The lifespan opens (and migrates) the database, loads the model and warms jieba once, then
starts the prediction thread; handlers find all of it on app.state through dependencies.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model.taxonomy import load_taxonomy
from service.api import router
from service.auth import KeyRing
from service.console import console_router
from service.db import QueueStore
from service.errors import error_body, install_error_handlers
from service.logging import configure_logging, log_event
from service.metrics import Metrics
from service.predictor import Batcher, ModelHolder
from service.settings import DEV_API_KEYS, Settings

logger = logging.getLogger("triage.app")
access_logger = logging.getLogger("triage.access")

DESCRIPTION = """信访分流服务：对信访件按领域与责任部门分类，并通过持久化队列分派。

Petition triage: classifies petitions by domain and responsible department and routes them through a
durable queue. Authenticate with `X-API-Key: <key>` (or `Authorization: Bearer <key>`). Every error is
`{"error": {"code", "message", "message_en"}}`.
"""


class BodyLimitMiddleware:
    """413 for bodies over the limit, judged by Content-Length or, for chunked uploads, by counting."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._reject(send)
                return
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        # No length given (chunked): read up to the limit first, then replay what was read.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        payload = json.dumps(error_body(
            "body_too_large", f"请求体超过 {self.max_bytes} 字节上限",
            f"request body is larger than the {self.max_bytes}-byte limit"), ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})


class AccessMiddleware:
    """Request id, access log line and request metrics. Logs the route template, never the body."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = dict(scope["headers"]).get(b"x-request-id", b"")
        request_id = incoming.decode("latin-1")[:64] if incoming else uuid.uuid4().hex
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = self.metrics.observe_request(scope["method"], route, status, started)
            principal = getattr(scope.get("state", {}).get("principal"), "name", None)
            log_event(access_logger, logging.INFO, "http.request", request_id=request_id, method=scope["method"],
                      route=route, status=status, ms=round(elapsed * 1000, 2), principal=principal)


def warn_about_dev_keys(settings: Settings) -> None:
    if not settings.using_dev_keys:
        return
    keys = ", ".join(f"{key} ({config.role})" for key, config in DEV_API_KEYS.items())
    message = (f"警告：正在使用开发用 API 密钥 {keys}；生产环境请设置 TRIAGE_API_KEYS / WARNING: development API "
               f"keys are active ({keys}); set TRIAGE_API_KEYS in production")
    print(message, file=sys.stderr, flush=True)
    log_event(logger, logging.WARNING, "auth.dev_keys_active", roles=[c.role for c in DEV_API_KEYS.values()])


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = time.perf_counter()
        warn_about_dev_keys(settings)
        store = QueueStore(settings.database_url, synchronous=settings.sqlite_synchronous,
                           due_days=settings.due_days)
        holder = ModelHolder(settings.registry, settings.thresholds)
        batcher = Batcher(settings.max_predict_batch, metrics.predict_batch.observe, store)
        app.state.store, app.state.models, app.state.batcher = store, holder, batcher
        metrics.watch_queues(store.queue_counts)
        metrics.set_model(holder.current.version)
        log_event(logger, logging.INFO, "service.started", model_version=holder.current.version,
                  heads=holder.current.heads, seconds=round(time.perf_counter() - started, 2))
        try:
            yield
        finally:
            batcher.stop()
            store.dispose()
            log_event(logger, logging.INFO, "service.stopped")

    app = FastAPI(
        title="信访分流 Petition triage API", version="1.0.0", description=DESCRIPTION, lifespan=lifespan,
        # Our own Prometheus metrics and JSON logs cover this; no OpenTelemetry exporters are configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        openapi_tags=[
            {"name": "petitions 信访件",
             "description": "分类、提交、查看、分流、办结 / classify, submit, read, route, close"},
            {"name": "queues 队列", "description": "队列统计、列表、领取 / counts, items, claim"},
            {"name": "system 系统", "description": "模型、健康检查、指标 / model, health, metrics"},
        ],
    )
    app.state.settings = settings
    app.state.keyring = KeyRing(settings.effective_api_keys())
    app.state.taxonomy = load_taxonomy()
    app.state.metrics = metrics
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(console_router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessMiddleware, metrics=metrics)
    return app
