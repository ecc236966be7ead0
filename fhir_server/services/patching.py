"""``PATCH [base]/Type/id``: JSON Patch (RFC 6902, ``application/json-patch+json``) or JSON Merge Patch (RFC 7386,
``application/merge-patch+json``, and a plain ``application/json`` object: fhirpy's ``patch()`` sends the changed
elements of the resource that way).

Why it ends in an ordinary update: the patched resource goes through the same validation, observers and version
check as a ``PUT``, so a patch can never store what a ``PUT`` would refuse. The patch applies to the version read;
that version is then the update's ``If-Match``, so a concurrent change in between is never overwritten: with the
client's own ``If-Match`` it is a 412 as for ``PUT``; without one the patch is applied again to the newer
version (:data:`ATTEMPTS` times at most). A patch may not change ``resourceType`` or ``id``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonpatch
import jsonpointer

from fhir_server.errors import FhirError, bad_request, error, unprocessable
from fhir_server.fhir.resources import copy_resource
from fhir_server.services.resources import ResourceService, WriteResult
from fhir_server.storage.versioning import check_if_match

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
PATCH_MEDIA_TYPES = (JSON_PATCH, MERGE_PATCH, "application/json")
ATTEMPTS = 3

Patch = Callable[[dict[str, Any]], Any]


def parse_patch(media_type: str, document: Any) -> Patch:
    """The patch document as a function of the current resource; 400 when it is not a patch of that kind."""
    if media_type != JSON_PATCH:
        if not isinstance(document, dict):
            raise bad_request("a JSON Merge Patch document is a JSON object", code="structure")
        return lambda resource: merge_patch(resource, document)
    if not isinstance(document, list):
        raise bad_request("a JSON Patch document is an array of operations", code="structure")
    try:
        return jsonpatch.JsonPatch(document).apply
    except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException, TypeError, AttributeError) as exc:
        raise bad_request(f"invalid JSON Patch: {exc}", code="structure") from None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge member by member, ``null`` removes a member, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def apply_patch(patch: Patch, resource: dict[str, Any]) -> dict[str, Any]:
    """The patched copy; 422 when an operation cannot apply (a failed ``test``, a missing path) or when it
    changes the resource's type or id."""
    try:
        patched = patch(copy_resource(resource))
    except jsonpatch.JsonPatchTestFailed as exc:
        raise unprocessable([error("processing", f"JSON Patch test failed: {exc}")]) from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise unprocessable([error("processing", f"JSON Patch cannot be applied: {exc}")]) from None
    if not isinstance(patched, dict):
        raise unprocessable([error("processing", "the patched document is not a resource")])
    for key in ("resourceType", "id"):
        if patched.get(key) != resource.get(key):
            raise unprocessable([error("processing", f"a patch may not change {key}", key)])
    return patched


async def patch_resource(
    service: ResourceService, resource_type: str, resource_id: str, patch: Patch, if_match: int | None
) -> WriteResult:
    """Apply ``patch`` to the current version and store the result as an update (see the module docstring)."""
    for attempt in range(ATTEMPTS):
        current = await service.read(resource_type, resource_id)
        check_if_match(current.reference, if_match, current.version_id)
        patched = apply_patch(patch, current.resource or {})
        try:
            return await service.update(resource_type, resource_id, patched, if_match=current.version_id)
        except FhirError as exc:
            if exc.status != 412 or if_match is not None or attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
