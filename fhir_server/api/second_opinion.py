"""HTTP routes of the second-opinion domain ($submit, later $decide and reports).

``register(app)`` is called by ``create_app`` before the generic REST routes are added, so that
``/ServiceRequest/$submit`` wins over ``/{type}/{id}``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

router = APIRouter()


def register(app: FastAPI) -> None:
    """Mount this module's routes and record its operations in ``app.state.registry``."""
    app.include_router(router)
