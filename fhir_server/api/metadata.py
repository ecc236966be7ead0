"""``GET [base]/metadata``: the CapabilityStatement, built once at start-up from what is really wired.

Interactions come from the REST table, search parameters from the search parameter table, profiles from the
definitions registry (the hosted ones) and operations from the capability registry, so the statement cannot
claim what the server does not do. It is serialised once; each request answers the same bytes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from fhir_server import FHIR_VERSION, __version__
from fhir_server.api.deps import get_context
from fhir_server.api.media import FHIR_JSON_UTF8
from fhir_server.api.rest import add_route
from fhir_server.api.registry import CapabilityRegistry, OperationRegistration
from fhir_server.search.parameters import COMMON_PARAMS, params_for
from fhir_server.security.access import load_access_rules
from fhir_server.security.discovery import capability_security
from fhir_server.settings import Settings

TYPE_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
                     "search-type")
PATCH_FORMATS = ("application/json-patch+json", "application/merge-patch+json")
SYSTEM_INTERACTIONS = ("transaction", "batch", "history-system", "search-system")


def _operation_entry(operation: OperationRegistration) -> dict[str, Any]:
    entry = {"name": operation.name, "definition": operation.definition}
    if operation.documentation:
        entry["documentation"] = operation.documentation
    return entry


def _profiles_by_type(definitions: Any, registry: CapabilityRegistry) -> dict[str, list[str]]:
    """Resource type -> hosted profile URLs constraining it (StructureDefinitions of kind resource)."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for url in definitions.hosted_profiles():
        definition = definitions.get(url) or {}
        if definition.get("kind") == "resource" and definition.get("derivation") == "constraint":
            by_type[definition["type"]].append(url)
    for resource_type, urls in registry.supported_profiles.items():
        by_type[resource_type].extend(url for url in urls if url not in by_type[resource_type])
    return by_type


def search_includes(resource_type: str) -> list[str]:
    """``_include`` values: the type's reference parameters (``Type:param``) and ``*``."""
    names = [f"{resource_type}:{p.name}" for p in params_for(resource_type).values() if p.type == "reference"]
    return [*names, "*"] if names else []


def revinclude_index(resource_types: list[str]) -> dict[str, list[str]]:
    """Target type -> the ``_revinclude`` values naming it: reference parameters of any type whose targets name
    the target explicitly (a parameter open to every type would list itself under each one)."""
    index: dict[str, list[str]] = defaultdict(list)
    for source in resource_types:
        for param in params_for(source).values():
            if param.type == "reference":
                for target in param.targets:
                    index[target].append(f"{source}:{param.name}")
    return index


def _system_search_params() -> list[dict[str, Any]]:
    """Parameters every type takes, also valid at ``[base]?_type=...`` (system search)."""
    return [{"name": p.name, "definition": p.url, "type": p.type} for p in COMMON_PARAMS]


# What ``updateCreate: false`` means with security on: the one exception, said where a client reads it.
TENANT_UPDATE_CREATE = ("Update as create (PUT to an id that does not exist) is refused with 405 to every client but "
                        "the plan's: an id another organization holds answers the same. Create with POST.")


def _resource_entry(
    resource_type: str,
    profiles: list[str],
    operations: list[OperationRegistration],
    extensions: list[dict[str, Any]],
    revincludes: list[str],
    update_create: bool = True,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": resource_type, "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}"}
    if not update_create:
        entry["documentation"] = TENANT_UPDATE_CREATE
    if extensions:
        entry = {"extension": list(extensions), **entry}
    if profiles:
        entry["supportedProfile"] = profiles
    entry.update(
        {
            "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": update_create,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "referencePolicy": ["literal", "logical"],
        }
    )
    search_params = [
        {"name": param.name, **({"definition": param.url} if param.url else {}), "type": param.type}
        for param in params_for(resource_type).values()
    ]
    includes = search_includes(resource_type)
    if includes:
        entry["searchInclude"] = includes
    if revincludes:
        entry["searchRevInclude"] = sorted(revincludes)
    if search_params:
        entry["searchParam"] = search_params
    if operations:
        entry["operation"] = [_operation_entry(op) for op in operations]
    return entry


def build_capability_statement(
    settings: Settings, definitions: Any, registry: CapabilityRegistry, published: datetime
) -> dict[str, Any]:
    """The server's CapabilityStatement (``kind: instance``) as a JSON dict."""
    operations_by_type: dict[str, list[OperationRegistration]] = defaultdict(list)
    system_operations: list[OperationRegistration] = []
    for operation in registry.operations:
        if not operation.resource_types:
            system_operations.append(operation)
        for resource_type in operation.resource_types:
            operations_by_type[resource_type].append(operation)
    profiles = _profiles_by_type(definitions, registry)
    resource_types = sorted(definitions.resource_types())
    revincludes = revinclude_index(resource_types)
    # With security on, most clients may not create a tenant's resource under an id they choose (see tenancy).
    security = load_access_rules(settings.mappings_dir) if settings.auth == "on" else None
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": [
            _resource_entry(
                resource_type,
                profiles.get(resource_type, []),
                operations_by_type.get(resource_type, []),
                registry.resource_extensions.get(resource_type, []),
                revincludes.get(resource_type, []),
                update_create=security is None or security.is_shared(resource_type),
            )
            for resource_type in resource_types
        ],
        "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
        "searchParam": _system_search_params(),
    }
    if settings.auth == "on":
        rest["security"] = capability_security(settings.public_base())
    if system_operations:
        rest["operation"] = [_operation_entry(op) for op in system_operations]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published.isoformat(timespec="seconds"),
        "publisher": "fhir-second-opinion-server",
        "kind": "instance",
        "software": {"name": "fhir-second-opinion-server", "version": __version__},
        "implementation": {"description": "Second-opinion requests FHIR server", "url": settings.public_base()},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "application/fhir+json"],
        "patchFormat": list(PATCH_FORMATS),
        "rest": [rest],
    }


async def capability_statement(request: Request, _: Any = Depends(get_context)) -> Response:
    """``GET [base]/metadata``: the statement serialised at start-up."""
    return Response(request.app.state.capability_statement, media_type=FHIR_JSON_UTF8)


def publish(app: FastAPI) -> None:
    """Build and cache the statement; call once everything (profiles, operations) is registered."""
    statement = build_capability_statement(
        app.state.settings, app.state.definitions, app.state.registry, app.state.clock()
    )
    app.state.capability_statement = orjson.dumps(statement)


def register(app: FastAPI, base_path: str) -> None:
    add_route(app, base_path, "/metadata", "GET", capability_statement)
