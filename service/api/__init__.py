"""HTTP routes, versioned under /v1 (health and metrics at the root), plus the console's page."""

from fastapi import APIRouter

from service.api.routes import console, docs, hotspots, petitions, queues, similar, stats, system

api_router = APIRouter()
api_router.include_router(petitions.router)
api_router.include_router(similar.router)
api_router.include_router(hotspots.router)
api_router.include_router(stats.router)
api_router.include_router(queues.router)
api_router.include_router(system.router)
console_router = console.console_router
docs_router = docs.docs_router
