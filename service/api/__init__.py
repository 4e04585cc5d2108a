"""HTTP routes, versioned under /v1 (health and metrics at the root)."""

from fastapi import APIRouter

from service.api import petitions, queues, system

router = APIRouter()
router.include_router(petitions.router)
router.include_router(queues.router)
router.include_router(system.router)
