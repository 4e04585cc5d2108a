"""Dependencies: everything a handler needs comes from app.state, set up in the lifespan."""

from __future__ import annotations

from fastapi import Request

from model.taxonomy import Taxonomy
from service.db import QueueStore
from service.errors import ApiError
from service.metrics import Metrics
from service.predictor import Batcher, LoadedModel, ModelHolder
from service.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> QueueStore:
    return request.app.state.store


def get_holder(request: Request) -> ModelHolder:
    return request.app.state.models


def get_model(request: Request) -> LoadedModel:
    """The model as of the start of this request: a reload meanwhile does not affect it."""
    holder: ModelHolder | None = getattr(request.app.state, "models", None)
    if holder is None:
        raise ApiError(503, "model_unavailable", "模型尚未加载", "the model is not loaded")
    return holder.current


def get_batcher(request: Request) -> Batcher:
    return request.app.state.batcher


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_taxonomy(request: Request) -> Taxonomy:
    return request.app.state.taxonomy
