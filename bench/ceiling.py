"""The framework's ceiling: a FastAPI app whose one route answers a constant body, served exactly like the
FHIR server (the same socket, workers and HTTP stack, :func:`fhir_server.serving.serve`). Every benchmark figure
is read as a fraction of what this app does in the same run.

    FHIR_PORT=8100 FHIR_WORKERS=2 python bench/ceiling.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's package, from anywhere

from fhir_server.settings import Settings  # noqa: E402

# About the size of a small Patient, so that the ceiling moves the same bytes as a read.
BODY = b'{"resourceType":"Patient","id":"ceiling","meta":{"versionId":"1"},"gender":"female","birthDate":"1970-01-01"}'


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    base = (settings or Settings()).normalized_base_path()

    @app.get(base + "/metadata")
    @app.get(base + "/ceiling")
    async def constant() -> Response:
        return Response(BODY, media_type="application/fhir+json")

    return app


if __name__ == "__main__":
    from fhir_server.serving import serve

    sys.exit(serve(Settings(), app_factory="ceiling:create_app"))
