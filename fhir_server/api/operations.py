"""Generic FHIR operations: ``$validate`` on a type (and on an instance).

Per the FHIR spec, ``$validate`` answers 200 with an OperationOutcome listing every issue, also when the
resource is invalid; only a request that cannot be read at all is an error. (The second-opinion operations
live in ``api/second_opinion.py``.)
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from fhir_server.api.deps import get_context
from fhir_server.api.media import fhir_response, read_body, check_content_type, parse_json, require_resource
from fhir_server.api.registry import OperationRegistration
from fhir_server.api.rest import add_operation, require_type, service_of
from fhir_server.errors import bad_request, operation_outcome
from fhir_server.services.validation import collect_issues

VALIDATE_DEFINITION = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
PROFILE_VALUE_KEYS = ("valueUri", "valueCanonical", "valueString")


def unpack_validate_input(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(resource, profiles) from a bare resource or a ``Parameters`` with ``resource`` and ``profile``."""
    if body.get("resourceType") != "Parameters":
        return body, []
    parameters = body.get("parameter", [])
    if not isinstance(parameters, list):
        raise bad_request("Parameters.parameter must be a list of parameters", "Parameters.parameter", code="structure")
    resource: Any = None
    profiles: list[str] = []
    for index, parameter in enumerate(parameters):
        if not isinstance(parameter, dict):
            continue
        if parameter.get("name") == "resource":
            resource = parameter.get("resource")
        elif parameter.get("name") == "profile":
            profiles.extend(parameter[key] for key in PROFILE_VALUE_KEYS if isinstance(parameter.get(key), str))
    if not isinstance(resource, dict):
        raise bad_request("Parameters for $validate need a 'resource' parameter", "Parameters.parameter", code="required")
    return resource, profiles


async def validate_type(resource_type: str, request: Request, _: Any = Depends(get_context)) -> Response:
    """``POST [base]/{type}/$validate`` (profile from the body's Parameters or ``?profile=``)."""
    require_type(request, resource_type)
    return await _validate(request, resource_type)


async def validate_instance(
    resource_type: str, resource_id: str, request: Request, _: Any = Depends(get_context)
) -> Response:
    """``POST [base]/{type}/{id}/$validate``: the body if one is sent, else the stored resource."""
    require_type(request, resource_type)
    return await _validate(request, resource_type, resource_id)


async def _validate(request: Request, resource_type: str, resource_id: str | None = None) -> Response:
    service = service_of(request)
    check_content_type(request)
    body = await read_body(request, service.settings.max_body_bytes)
    if body.strip():
        resource, profiles = unpack_validate_input(require_resource(parse_json(body, service.settings)))
    elif resource_id is not None:
        resource, profiles = (await service.read(resource_type, resource_id)).resource or {}, []
    else:
        raise bad_request("$validate needs a resource in the body", code="required")
    require_resource(resource, resource_type)
    profiles += request.query_params.getlist("profile")
    structure_issues, profile_issues = collect_issues(service.validator, resource, profiles)
    return fhir_response(operation_outcome(structure_issues + profile_issues))


def register(app: FastAPI) -> None:
    """Add the routes (before the generic ``{id}`` routes) and declare ``$validate`` for every type."""
    registration = OperationRegistration(
        name="validate",
        definition=VALIDATE_DEFINITION,
        resource_types=tuple(app.state.definitions.resource_types()),
        documentation="Validate a resource against the base R4 rules, the profiles this server hosts and those of the "
                      "R4 specification (vitalsigns, bp, ...)",
    )
    add_operation(app, "/{resource_type}/$validate", {"POST": validate_type}, registration)
    add_operation(app, "/{resource_type}/{resource_id}/$validate", {"POST": validate_instance}, registration)
