"""Reading an operation's ``Parameters`` body: wire checks, then the R4 base rules, before any operation looks
inside it.

Operations read their inputs by name (``decision``, ``start``...) and trust the shapes FHIR promises: a list of
parameters, a ``valueCode`` that is a string. Checking the base rules first makes a malformed body a 400 naming
each problem (``Parameters.parameter[0].valueCode``) instead of an error deep in the operation.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from fhir_server.api.media import read_resource
from fhir_server.errors import FhirError
from fhir_server.services.validation import has_errors


async def read_parameters(request: Request) -> dict[str, Any]:
    """The request's ``Parameters`` resource; 400 (every base-rule problem at once) when it is not valid R4."""
    app = request.app
    parameters = await read_resource(request, app.state.settings, "Parameters")
    issues = app.state.validator.validate_structure(parameters)
    if has_errors(issues):
        raise FhirError(issues, 400)
    return parameters
