"""Model information and reload, health and readiness probes, Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from model.persistence import ModelLoadError
from model.registry import RegistryError
from service.api.deps import (
    AdminUser,
    CurrentUser,
    MetricsDep,
    MetricsViewer,
    ModelDep,
    ModelHolderDep,
    TaxonomyDep,
)
from service.api.routes.petitions import ERRORS
from service.errors import ApiError
from service.logging import log_event
from service.predictor import ModelHolder
from service.schemas import ErrorOut, HeadInfoOut, HealthOut, LabelNameOut, ModelOut, ReadyOut, ReloadOut

logger = logging.getLogger("triage.api")
router = APIRouter(tags=["system 系统"])


@router.get(
    "/v1/model",
    response_model=ModelOut,
    responses=ERRORS,
    summary="当前模型 / Current model: version, labels, thresholds, metrics",
)
def model_info(model: ModelDep, taxonomy: TaxonomyDep, principal: CurrentUser) -> ModelOut:
    manifest = model.manifest
    heads = {
        name: HeadInfoOut(
            labels=[LabelNameOut(label=label, name=taxonomy.name(label, name)) for label in model.model.classes(name)],
            threshold=model.thresholds[name],
        )
        for name in model.heads
    }
    return ModelOut(
        version=manifest.version,
        created_at=manifest.created_at,
        loaded_at=model.loaded_at,
        heads=heads,
        thresholds=model.thresholds,
        metrics=manifest.metrics,
        training_data=manifest.training_data,
        library_versions=manifest.library_versions,
        flags=manifest.flags,
    )


@router.post(
    "/v1/model/reload",
    response_model=ReloadOut,
    responses={**ERRORS, 503: {"model": ErrorOut}},
    summary="切换到模型库当前版本（管理员）/ Switch to the registry's current model (admin)",
)
def reload_model(holder: ModelHolderDep, metrics: MetricsDep, principal: AdminUser) -> ReloadOut:
    """先完整加载新模型再替换引用，进行中的请求使用旧模型完成。/ Builds the new model fully, then swaps one
    reference: requests in flight finish on the old model; none are dropped."""
    try:
        previous, fresh = holder.reload()
    except Exception as error:  # whatever broke in the new model, the old one keeps serving
        log_event(logger, logging.ERROR, "model.reload_failed", error_type=type(error).__name__, actor=principal.name)
        known = isinstance(error, ModelLoadError | RegistryError | OSError)
        raise ApiError(
            503,
            "model_reload_failed",
            "新模型加载失败，继续使用原模型",
            "the new model could not be loaded; the previous one stays in service",
            {"reason": str(error) if known else type(error).__name__},
        ) from error
    metrics.set_model(fresh.version)
    log_event(
        logger, logging.INFO, "model.reloaded", previous=previous.version, version=fresh.version, actor=principal.name
    )
    return ReloadOut(
        previous_version=previous.version, version=fresh.version, changed=previous.version != fresh.version
    )


@router.get("/healthz", response_model=HealthOut, summary="进程存活 / Process is alive")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut}},
    summary="模型已加载且数据库可用 / Model loaded and database reachable",
)
def readyz(request: Request) -> Response:
    holder: ModelHolder | None = getattr(request.app.state, "models", None)
    try:
        database = bool(request.app.state.store.ping())
    except Exception as error:
        log_event(logger, logging.WARNING, "readyz.database_unreachable", error_type=type(error).__name__)
        database = False
    version = holder.current.version if holder else None
    ready = database and version is not None
    body = ReadyOut(status="ready" if ready else "not_ready", model_version=version, database=database)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus 指标（默认需密钥，TRIAGE_METRICS_PUBLIC=true 时公开）/ Prometheus metrics (an API key "
    "of any role unless TRIAGE_METRICS_PUBLIC=true)",
    response_class=Response,
    responses={401: {"model": ErrorOut}},
)
def prometheus(metrics: MetricsDep, viewer: MetricsViewer) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
