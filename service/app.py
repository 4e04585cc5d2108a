"""The FastAPI application factory: `uvicorn service.app:create_app --factory`.

The lifespan opens (and migrates) the database, loads the model and warms jieba once, then
starts the prediction thread; handlers find all of it on app.state through dependencies.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from model.taxonomy import load_taxonomy
from service.api import api_router, console_router, docs_router
from service.auth import KeyRing
from service.errors import install_error_handlers
from service.logging import configure_logging, log_event
from service.metrics import Metrics
from service.middleware import AccessMiddleware, BodyLimitMiddleware
from service.openapi import install_openapi
from service.predictor import Batcher, LoadedModel, ModelHolder, RegistryWatcher
from service.settings import DEV_API_KEYS, ConfigurationError, Settings, load_settings
from store import QueueStore
from store.similar import SimilarPetitions

logger = logging.getLogger("triage.app")

DESCRIPTION = """信访分流服务：对信访件按领域与责任部门分类，并通过持久化队列分派。

Petition triage: classifies petitions by domain and responsible department and routes them through a
durable queue. Authenticate with `X-API-Key: <key>` (or `Authorization: Bearer <key>`). Every error is
`{"error": {"code", "message", "message_en"}}`.
"""


def warn_about_dev_petitioner_secret(settings: Settings) -> None:
    if settings.petitioner_secret is not None:
        return
    print(
        "警告：未设置 TRIAGE_PETITIONER_SECRET，信访人标识使用开发用密钥 / WARNING: TRIAGE_PETITIONER_SECRET is not "
        "set; petitioner identities use a development key",
        file=sys.stderr,
        flush=True,
    )
    log_event(logger, logging.WARNING, "similar.dev_petitioner_secret")


def warn_about_dev_keys(settings: Settings) -> None:
    if not settings.using_dev_keys:
        return
    keys = ", ".join(f"{key} ({config.role})" for key, config in DEV_API_KEYS.items())
    message = (
        f"警告：正在使用开发用 API 密钥 {keys}；生产环境请设置 TRIAGE_API_KEYS / WARNING: development API "
        f"keys are active ({keys}); set TRIAGE_API_KEYS in production"
    )
    print(message, file=sys.stderr, flush=True)
    log_event(logger, logging.WARNING, "auth.dev_keys_active", roles=[c.role for c in DEV_API_KEYS.values()])


def create_app(settings: Settings | None = None) -> FastAPI:
    if settings is None:
        try:
            settings = load_settings()
        except ConfigurationError as error:  # uvicorn --factory would print a traceback
            print(f"错误 / error: {error}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
    configure_logging(settings.log_level)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = time.perf_counter()
        warn_about_dev_keys(settings)
        warn_about_dev_petitioner_secret(settings)
        store = QueueStore(
            settings.database_url,
            synchronous=settings.sqlite_synchronous,
            deadlines=settings.deadlines,
            pool=settings.pool_options(),
        )
        similar = SimilarPetitions(store)
        indexed = similar.sync()  # the similarity index, rebuilt from the database
        holder = ModelHolder(settings.registry, settings.thresholds, settings.segmenter)
        batcher = Batcher(
            settings.max_predict_batch,
            metrics.predict_batch.observe,
            store,
            slice_chars=settings.predict_slice_chars or None,
        )
        app.state.store, app.state.models, app.state.batcher = store, holder, batcher
        app.state.similar = similar
        metrics.watch_queues(store.queue_counts)
        metrics.set_model(holder.current.version)

        def reloaded(previous: LoadedModel, fresh: LoadedModel) -> None:
            metrics.set_model(fresh.version)
            log_event(
                logger,
                logging.INFO,
                "model.reloaded",
                previous=previous.version,
                version=fresh.version,
                actor="registry",
            )

        watcher = (
            RegistryWatcher(holder, settings.model_poll_seconds, reloaded).start()
            if settings.model_poll_seconds > 0
            else None
        )
        log_event(
            logger,
            logging.INFO,
            "service.started",
            model_version=holder.current.version,
            heads=holder.current.heads,
            indexed_petitions=indexed,
            seconds=round(time.perf_counter() - started, 2),
        )
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()
            batcher.stop()
            store.dispose()
            log_event(logger, logging.INFO, "service.stopped")

    app = FastAPI(
        title="信访分流 Petition triage API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by service/api/routes/docs.py from local files instead of a CDN (intranets have none).
        docs_url=None,
        redoc_url=None,
        # Our own Prometheus metrics and JSON logs cover this; no OpenTelemetry exporters are configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        openapi_tags=[
            {
                "name": "petitions 信访件",
                "description": "分类、提交、查看、分流、办结 / classify, submit, read, route, close",
            },
            {"name": "queues 队列", "description": "队列统计、列表、领取 / counts, items, claim"},
            {"name": "hotspots 热点", "description": "热点聚类与导出 / hot-topic clusters and export"},
            {"name": "stats 统计", "description": "建议采纳情况（按周、按部门）/ acceptance of suggestions"},
            {"name": "system 系统", "description": "模型、健康检查、指标 / model, health, metrics"},
        ],
    )
    app.state.settings = settings
    app.state.keyring = KeyRing(settings.effective_api_keys())
    app.state.taxonomy = load_taxonomy()
    app.state.metrics = metrics
    install_error_handlers(app)
    install_openapi(app, settings, app.state.taxonomy)
    app.include_router(api_router)
    app.include_router(console_router)
    app.include_router(docs_router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessMiddleware, metrics=metrics)
    return app
