"""Dependencies, as typed aliases named for what they are (the FastAPI full-stack template's shape).

Everything comes from app.state, set up by the lifespan in service/app.py. Route functions take
these aliases as parameters and nothing else from the framework. The dependencies are `async def`
although none awaits anything: FastAPI runs a plain `def` dependency in its thread pool, and the
dozen thread hops per request cost more than the model's prediction on a short petition.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from model.taxonomy import Taxonomy
from service.auth import Permission, Principal, check_permission, unauthorized
from service.errors import ApiError
from service.metrics import Metrics
from service.petitions import Intake
from service.predictor import LoadedModel, ModelHolder
from service.settings import Settings
from store import QueueStore
from store.similar import SimilarPetitions


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> QueueStore:
    store: QueueStore = request.app.state.store
    return store


async def get_model_holder(request: Request) -> ModelHolder:
    holder: ModelHolder = request.app.state.models
    return holder


async def get_model(request: Request) -> LoadedModel:
    """The model as of the start of this request: a reload meanwhile does not affect it."""
    holder: ModelHolder | None = getattr(request.app.state, "models", None)
    if holder is None:
        raise ApiError(503, "model_unavailable", "模型尚未加载", "the model is not loaded")
    return holder.current


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_similar(request: Request) -> SimilarPetitions:
    similar: SimilarPetitions = request.app.state.similar
    return similar


async def get_taxonomy(request: Request) -> Taxonomy:
    taxonomy: Taxonomy = request.app.state.taxonomy
    return taxonomy


api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API 密钥 / API key (or `Authorization: Bearer <key>`)"
)
bearer = HTTPBearer(auto_error=False, description="API 密钥 / API key as a bearer token")


async def get_current_user(
    request: Request,
    key: Annotated[str | None, Security(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal:
    presented = key or (credentials.credentials if credentials else None)
    if not presented:
        raise unauthorized()
    principal: Principal | None = request.app.state.keyring.lookup(presented)
    if principal is None:
        raise unauthorized()
    request.state.principal = principal  # the access log records the key's name
    return principal


async def get_metrics_viewer(
    request: Request,
    key: Annotated[str | None, Security(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal | None:
    """Who reads /metrics: anyone when TRIAGE_METRICS_PUBLIC is set, else any valid key."""
    if request.app.state.settings.metrics_public:
        return None
    return await get_current_user(request, key, credentials)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[QueueStore, Depends(get_store)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
ModelHolderDep = Annotated[ModelHolder, Depends(get_model_holder)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
TaxonomyDep = Annotated[Taxonomy, Depends(get_taxonomy)]
SimilarDep = Annotated[SimilarPetitions, Depends(get_similar)]
CurrentUser = Annotated[Principal, Depends(get_current_user)]
MetricsViewer = Annotated[Principal | None, Depends(get_metrics_viewer)]


def allowed(permission: Permission) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency: the caller's role must hold `permission` (403 otherwise)."""

    async def check(principal: CurrentUser) -> Principal:
        check_permission(principal, permission)
        return principal

    return check


IntakeUser = Annotated[Principal, Depends(allowed(Permission.INTAKE))]


async def get_intake(request: Request, principal: IntakeUser) -> Intake:
    """Everything a submission needs, for a caller allowed to submit.

    Read from app.state here rather than through the single-resource dependencies: classify and submit
    are the hot routes, and resolving seven more dependencies per request cost more than reading them."""
    state = request.app.state
    model = await get_model(request)
    return Intake(
        state.store, model, state.batcher, state.settings, state.taxonomy, state.metrics, principal, state.similar
    )


IntakeDep = Annotated[Intake, Depends(get_intake)]
RoutingUser = Annotated[Principal, Depends(allowed(Permission.ROUTE))]
ClosingUser = Annotated[Principal, Depends(allowed(Permission.CLOSE))]
HandlingUser = Annotated[Principal, Depends(allowed(Permission.HANDLE))]
NotingUser = Annotated[Principal, Depends(allowed(Permission.NOTE))]
AdminUser = Annotated[Principal, Depends(allowed(Permission.RELOAD_MODEL))]
