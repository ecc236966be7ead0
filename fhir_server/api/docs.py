"""Interactive API docs that work offline: Swagger UI served from the package, not from a CDN.

The assets in ``static/`` are ``swagger-ui-bundle.js``, ``swagger-ui.css`` and the favicon of the npm package
``swagger-ui-dist`` at the version pinned below (Apache-2.0; its LICENSE and NOTICE sit beside them).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI_VERSION = "5.17.14"
STATIC_DIR = Path(__file__).resolve().parent / "static"


def register(app: FastAPI, base_path: str) -> None:
    """Serve ``[base]/docs`` and its assets under ``[base]/_static`` (register before the REST routes)."""
    static_path = f"{base_path}/_static"
    openapi_url = app.openapi_url or f"{base_path}/openapi.json"

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title="Second-opinion FHIR server",
            swagger_js_url=f"{static_path}/swagger-ui-bundle.js",
            swagger_css_url=f"{static_path}/swagger-ui.css",
            swagger_favicon_url=f"{static_path}/favicon-32x32.png",
        )

    app.mount(static_path, StaticFiles(directory=STATIC_DIR), name="static")
    app.add_api_route(f"{base_path}/docs", swagger_ui, methods=["GET"], include_in_schema=False)
