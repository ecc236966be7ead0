"""Start-up loading of the project's conformance resources from ``profiles/``.

StructureDefinitions and Questionnaires join the definitions registry (so resources claiming them, and responses
to them, are validated), CodeSystems and ValueSets join the terminology, and every one of them is upserted into
the store so it is served by plain REST and searchable by ``url`` — written only when its content changed, so restarts add no versions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

import orjson

from fhir_server.errors import FhirError
from fhir_server.storage.base import ResourceOperations

log = logging.getLogger(__name__)

TERMINOLOGY_TYPES = frozenset({"CodeSystem", "ValueSet"})
VOLATILE_KEYS = ("meta",)


def read_conformance_files(directory: Path) -> list[dict[str, Any]]:
    """Every JSON resource in ``directory`` (none when it is missing), in file-name order."""
    if not directory.is_dir():
        return []
    resources = []
    for path in sorted(directory.glob("*.json")):
        resource = orjson.loads(path.read_bytes())
        if isinstance(resource, dict) and resource.get("resourceType"):
            resources.append(resource)
        else:
            log.warning("skipping %s: not a FHIR resource", path)
    return resources


def register_definitions(resources: Iterable[dict[str, Any]], definitions: Any, terminology: Any) -> None:
    """Make profiles and terminology known to validation (no store needed: the CLI's ``validate`` uses this)."""
    for resource in resources:
        if resource["resourceType"] == "StructureDefinition":
            definitions.add(resource)
        elif resource["resourceType"] == "Questionnaire" and resource.get("url"):
            definitions.add_questionnaire(resource)
        elif resource["resourceType"] in TERMINOLOGY_TYPES:
            terminology.add(resource)


def without_volatile(resource: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in resource.items() if key not in VOLATILE_KEYS}


async def publish_resources(resources: Iterable[dict[str, Any]], store: ResourceOperations) -> int:
    """Upsert each resource (by its id) unless the stored one is the same apart from ``meta``; count writes."""
    written = 0
    for resource in resources:
        resource_id = resource.get("id")
        if not resource_id:
            log.warning("not publishing %s %s: it has no id", resource["resourceType"], resource.get("url"))
            continue
        try:
            current = await store.read(resource["resourceType"], resource_id)
            unchanged = current.resource is not None and without_volatile(current.resource) == without_volatile(resource)
        except FhirError:  # never stored, or deleted
            unchanged = False
        if not unchanged:
            await store.update(dict(resource))
            written += 1
    return written


def load_conformance(directory: Path, definitions: Any, terminology: Any) -> list[dict[str, Any]]:
    """Read ``directory`` and register what it holds; return the resources for publishing."""
    resources = read_conformance_files(directory)
    register_definitions(resources, definitions, terminology)
    return resources
