"""ASGI middleware: the request body limit, and the access log with request ids and metrics."""

from __future__ import annotations

import json
import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_body
from service.logging import log_event
from service.metrics import Metrics

access_logger = logging.getLogger("triage.access")


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
        payload = json.dumps(
            error_body(
                "body_too_large",
                f"请求体超过 {self.max_bytes} 字节上限",
                f"request body is larger than the {self.max_bytes}-byte limit",
            ),
            ensure_ascii=False,
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
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
            # The caller's address; behind a proxy it is X-Forwarded-For's only when uvicorn trusts that proxy
            # (--forwarded-allow-ips), so a client cannot put any address it likes in the log.
            client = (scope.get("client") or ("unknown",))[0]
            log_event(
                access_logger,
                logging.INFO,
                "http.request",
                request_id=request_id,
                method=scope["method"],
                route=route,
                status=status,
                ms=round(elapsed * 1000, 2),
                principal=principal,
                client=client,
            )
