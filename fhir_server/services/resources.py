"""The FHIR interactions on single resources, shared by REST, bundles and the CLI.

HTTP parsing happens before (``api/``), storage after (``storage/``); here live the rules between them:
validation on every write, conditional create, version checks, URL/body id agreement. What the domain does when
a resource changes runs in the store's change observers (:mod:`fhir_server.storage.observed`), on every path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fhir_server.errors import FhirError, Issue, bad_request, not_supported, precondition_failed
from fhir_server.search.query import parse_search
from fhir_server.services.validation import ResourceValidator, check_writable
from fhir_server.settings import Settings
from fhir_server.storage.base import ResourceOperations, ResourceStore, StoredResource, uniqueness_key
from fhir_server.storage.observed import collecting_warnings

ETAG_PATTERN = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')
# Versions are 64-bit integers in both stores: a larger number names no version and must not reach them.
MAX_VERSION = 2**63 - 1


def parse_version_tag(value: str | None, what: str = "If-Match") -> int | None:
    """``W/"3"``, ``"3"`` or ``3`` -> 3; None when absent; 400 when it is not a version."""
    if value is None or value == "":
        return None
    match = ETAG_PATTERN.match(value)
    if not match or int(match.group(1)) > MAX_VERSION:
        raise bad_request(f"{what} {value!r} is not a version ETag such as W/\"1\"")
    return int(match.group(1))


@dataclass(frozen=True)
class WriteResult:
    """What a create or update produced; ``existing`` marks a conditional create that matched."""

    stored: StoredResource
    created: bool
    warnings: list[Issue] = field(default_factory=list)
    existing: bool = False

    @property
    def status(self) -> int:
        return 201 if self.created else 200


class ResourceService:
    """Single-resource interactions against one store (or one of its open transactions)."""

    def __init__(
        self,
        store: ResourceStore,
        validator: ResourceValidator,
        definitions: Any,
        settings: Settings,
    ) -> None:
        self.store = store
        self.validator = validator
        self.definitions = definitions  # DefinitionRegistry: which resource types exist
        self.settings = settings

    def knows_type(self, resource_type: str) -> bool:
        """Whether ``resource_type`` is a concrete R4 resource type this server serves."""
        return self.definitions.is_resource_type(resource_type)

    def require_type(self, resource_type: str) -> None:
        """404 (not-supported) for a type that is not an R4 resource type: in a URL, a Bundle entry or a query."""
        if not self.knows_type(resource_type):
            raise not_supported(f"resource type {resource_type!r} is not supported", status=404)

    # -- reads -----------------------------------------------------------------------------------------------
    async def read(self, resource_type: str, resource_id: str, ops: ResourceOperations | None = None) -> StoredResource:
        return await (ops or self.store).read(resource_type, resource_id)

    async def vread(
        self, resource_type: str, resource_id: str, version_id: int, ops: ResourceOperations | None = None
    ) -> StoredResource:
        """A version; a deletion marker answers 410 as a read of a deleted resource does."""
        stored = await (ops or self.store).vread(resource_type, resource_id, version_id)
        if stored.deleted:
            raise FhirError.single(410, "deleted", f"{resource_type}/{resource_id} version {version_id} is a deletion")
        return stored

    async def find_to_write(self, ops: ResourceOperations, resource_type: str, query_string: str) -> list[StoredResource]:
        """:meth:`find` for a conditional write (inside ``ops``, a transaction): when nothing matches yet, the
        condition's lock is taken (:meth:`ResourceOperations.lock`), so a concurrent request with the same
        condition cannot create a second match: it runs again after this one and finds what it wrote."""
        matches = await self.find(ops, resource_type, query_string)
        if not matches:
            await ops.lock(uniqueness_key(resource_type, parse_qsl(query_string.lstrip("?"), keep_blank_values=True)))
        return matches

    async def find(
        self, ops: ResourceOperations, resource_type: str, query_string: str, *, limit: int = 2
    ) -> list[StoredResource]:
        """Resources matching a conditional query string (``identifier=a|b``), at most ``limit``.

        Unknown parameters are errors here: ignoring one would match too much and break conditional logic. So is
        a type that is not a resource type (404, as at any URL; a conditional reference names its own): nothing
        could match, and parsing a query for it would cache search parameters under any string a client makes up."""
        self.require_type(resource_type)
        params = parse_qsl(query_string.lstrip("?"), keep_blank_values=True)
        if not params:
            raise bad_request(f"the conditional query for {resource_type} is empty")
        query = parse_search(
            resource_type, params, default_count=limit, max_count=limit, strict=True,
            limits=self.settings.search_limits(),
        )
        query.count, query.offset, query.total = limit, 0, "none"
        query.includes, query.revincludes = [], []
        return (await ops.search(query)).items

    # -- writes ----------------------------------------------------------------------------------------------
    async def create(
        self,
        resource: dict[str, Any],
        *,
        if_none_exist: str | None = None,
        ops: ResourceOperations | None = None,
    ) -> WriteResult:
        """Validate and store a new resource (server-assigned id), or return the one ``If-None-Exist`` finds."""
        warnings = check_writable(self.validator, resource)
        if ops is None and if_none_exist:
            return await self.store.atomically(lambda tx: self._create_in(tx, resource, if_none_exist, warnings))
        return await self._create_in(ops or self.store, resource, if_none_exist, warnings)

    async def _create_in(
        self,
        ops: ResourceOperations,
        resource: dict[str, Any],
        if_none_exist: str | None,
        warnings: list[Issue],
    ) -> WriteResult:
        resource_type = resource["resourceType"]
        if if_none_exist:
            matches = await self.find_to_write(ops, resource_type, if_none_exist)
            if len(matches) > 1:
                raise precondition_failed(f"If-None-Exist {if_none_exist!r} matches more than one {resource_type}")
            if matches:
                return WriteResult(matches[0], created=False, warnings=warnings, existing=True)
        with collecting_warnings() as observed:
            stored = await ops.create(resource)
        return WriteResult(stored, created=True, warnings=warnings + observed)

    async def create_with_id(
        self, resource: dict[str, Any], resource_id: str, ops: ResourceOperations
    ) -> WriteResult:
        """Create with an id chosen in advance (transaction entries whose ``urn:uuid`` was already resolved)."""
        warnings = check_writable(self.validator, resource)
        with collecting_warnings() as observed:
            stored = await ops.create(resource, resource_id=resource_id)
        return WriteResult(stored, created=True, warnings=warnings + observed)

    async def update(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict[str, Any],
        *,
        if_match: int | None = None,
        ops: ResourceOperations | None = None,
    ) -> WriteResult:
        """Validate and store a new version (or version 1 under the client's id: update-as-create)."""
        body_id = resource.get("id")
        if body_id is None:
            raise bad_request("the resource in an update must carry the id of the URL", f"{resource_type}.id",
                              code="required")
        if body_id != resource_id:
            raise bad_request(
                f"the resource id {body_id!r} does not match the id {resource_id!r} of the URL", f"{resource_type}.id"
            )
        warnings = check_writable(self.validator, resource)
        with collecting_warnings() as observed:
            stored, created = await (ops or self.store).update(resource, if_match=if_match)
        return WriteResult(stored, created=created, warnings=warnings + observed)

    async def delete(
        self,
        resource_type: str,
        resource_id: str,
        *,
        if_match: int | None = None,
        ops: ResourceOperations | None = None,
    ) -> StoredResource | None:
        return await (ops or self.store).delete(resource_type, resource_id, if_match=if_match)

    async def conditional_update(
        self,
        resource_type: str,
        query_string: str,
        resource: dict[str, Any],
        *,
        ops: ResourceOperations | None = None,
    ) -> WriteResult:
        """``PUT [base]/Type?query``: update the one match, create when none matches, 412 when several do."""
        if ops is None:
            return await self.store.atomically(
                lambda tx: self.conditional_update(resource_type, query_string, resource, ops=tx)
            )
        matches = await self.find_to_write(ops, resource_type, query_string)
        if len(matches) > 1:
            raise precondition_failed(f"conditional update {query_string!r} matches more than one {resource_type}")
        if matches:
            return await self.update(resource_type, matches[0].id, {**resource, "id": resource.get("id", matches[0].id)},
                                     ops=ops)
        if resource.get("id"):
            return await self.update(resource_type, resource["id"], resource, ops=ops)
        return await self.create(resource, ops=ops)

    async def conditional_delete(
        self, resource_type: str, query_string: str, *, ops: ResourceOperations | None = None
    ) -> StoredResource | None:
        """``DELETE [base]/Type?query``: delete the one match (nothing to do when none), 412 when several."""
        if ops is None:
            return await self.store.atomically(lambda tx: self.conditional_delete(resource_type, query_string, ops=tx))
        matches = await self.find(ops, resource_type, query_string)
        if len(matches) > 1:
            raise precondition_failed(f"conditional delete {query_string!r} matches more than one {resource_type}")
        return await ops.delete(resource_type, matches[0].id) if matches else None
