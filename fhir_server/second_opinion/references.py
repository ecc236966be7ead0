"""Where each submitted entry is stored, and what each of its references points to.

A ``$submit`` Bundle references its entries by ``fullUrl`` (``urn:uuid:...``) or resources already on the
server (``Patient/123``). Before anything is written this module decides the ``Type/id`` of every entry (an
entry whose business identifier matches a stored resource updates it; any other gets a new id), rewrites
every reference to that local form, and reports each reference that resolves to nothing as a 422 naming the
element (``Bundle.entry[2].resource.beneficiary``).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

from fhir_server.errors import FhirError, Issue, error, unprocessable
from fhir_server.fhir.resources import copy_resource
from fhir_server.search.query import Criterion, SearchQuery, SortKey, TokenValue
from fhir_server.storage.base import ResourceOperations


@dataclass
class PlannedEntry:
    index: int
    resource: dict[str, Any]  # rewritten copy, with its final id
    exists: bool  # True: stored already (the write is a new version)

    @property
    def reference(self) -> str:
        return f"{self.resource['resourceType']}/{self.resource['id']}"

    @property
    def expression(self) -> str:
        return f"Bundle.entry[{self.index}].resource"


@dataclass
class WritePlan:
    entries: list[PlannedEntry]
    by_reference: dict[str, PlannedEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_reference = {e.reference: e for e in self.entries}


def walk_references(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Reference object (a dict with a string ``reference``) below ``node``, with its FHIRPath."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield path, node
        for key, value in node.items():
            if key != "reference":
                yield from walk_references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for position, value in enumerate(node):
            yield from walk_references(value, f"{path}[{position}]")


def local_form(reference: str) -> str | None:
    """``Type/id`` for a relative reference or an absolute URL ending in one; None for other forms."""
    parts = reference.split("/")
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-1] and not reference.startswith(("urn:", "#")):
        if "_history" in parts:  # Type/id/_history/n
            at = parts.index("_history")
            return "/".join(parts[at - 2 : at]) if at >= 2 else None
        return "/".join(parts[-2:])
    return None


async def matching_stored_id(ops: ResourceOperations, resource: dict[str, Any]) -> str | None:
    """The id of the stored resource of the same type sharing a business identifier, if any."""
    for identifier in resource.get("identifier", ()):
        if not identifier.get("value"):
            continue
        query = SearchQuery(
            resource_type=resource["resourceType"],
            criteria=[
                Criterion("identifier", "token", (TokenValue(identifier.get("system", ""), identifier["value"]),))
            ],
            count=1,
            total="none",
        )
        page = await ops.search(query)
        if page.items:
            return page.items[0].id
    return None


# Ids of new resources that carry a business identifier derive from it (see :func:`new_id`).
IDENTIFIED_ID_NAMESPACE = uuid.UUID("5c0f6a0e-8a7b-4c1e-9d3f-2b6e1a7c4d90")


async def new_id(ops: ResourceOperations, resource: dict[str, Any]) -> str:
    """The id of a resource the submission creates: derived from its first business identifier when it has one.

    Why: two submissions of the same request racing (two instances, or two requests on one) both find no stored
    resource with that identifier; with the same derived id, the second one's create conflicts (409) and its whole
    transaction rolls back instead of storing a second case. A deleted resource keeps its id: a new one with the
    same identifier then gets a random id (the case is not racing a deletion)."""
    for identifier in resource.get("identifier", ()):
        if identifier.get("value"):
            key = f"{resource['resourceType']}|{identifier.get('system', '')}|{identifier['value']}"
            derived = str(uuid.uuid5(IDENTIFIED_ID_NAMESPACE, key))
            try:
                await ops.read(resource["resourceType"], derived)
            except FhirError as exc:
                if exc.status == 404:
                    return derived
            break
    return str(uuid.uuid4())


async def read_or_none(ops: ResourceOperations, reference: str) -> dict[str, Any] | None:
    """The current resource a local ``Type/id`` reference names, or None when it is absent or deleted."""
    resource_type, _, resource_id = reference.partition("/")
    if not resource_id:
        return None
    try:
        return (await ops.read(resource_type, resource_id)).resource
    except FhirError:
        return None


async def read_all(ops: ResourceOperations, references: list[str]) -> dict[str, dict[str, Any] | None]:
    """What :func:`read_or_none` answers for each reference, with one search per resource type (``_id``) for the
    local ``Type/id`` references instead of one read each (a directory names dozens of Practitioners)."""
    found: dict[str, dict[str, Any] | None] = {}
    by_type: dict[str, list[str]] = {}
    for reference in references:
        resource_type, _, resource_id = reference.partition("/")
        if resource_type[:1].isupper() and resource_type.isalpha() and resource_id and "/" not in resource_id:
            by_type.setdefault(resource_type, []).append(resource_id)
        elif reference not in found:
            found[reference] = await read_or_none(ops, reference)
    for resource_type, ids in by_type.items():
        criterion = Criterion("_id", "token", tuple(TokenValue(None, i) for i in dict.fromkeys(ids)))
        stored = {r["id"]: r for r in await search_every(ops, SearchQuery(resource_type, criteria=[criterion]))}
        found.update((f"{resource_type}/{i}", stored.get(i)) for i in ids)
    return found


SEARCH_PAGE_SIZE = 200  # resources per page when the domain reads every match of a search
BY_ID = SortKey("_id", "token")


async def search_every(ops: ResourceOperations, query: SearchQuery) -> list[dict[str, Any]]:
    """Every current resource matching ``query``, page by page (sorted by id, so pages neither overlap nor skip):
    the rules must see all candidates ("must consider all participating specialists"), not a first page."""
    size = SEARCH_PAGE_SIZE
    found: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = await ops.search(dataclasses.replace(query, sort=[BY_ID], count=size, offset=offset, total="none"))
        found += [item.resource for item in page.items if item.resource is not None]
        if not page.has_more:
            return found
        offset += size


async def plan_writes(ops: ResourceOperations, entries: list[dict[str, Any]]) -> WritePlan:
    """Decide every entry's id, rewrite all references, and fail (422, nothing written) on any dangling one."""
    targets: dict[str, str] = {}
    planned: list[PlannedEntry] = []
    for index, entry in enumerate(entries):
        resource = copy_resource(entry["resource"])
        stored_id = await matching_stored_id(ops, resource)
        given = local_form(entry.get("fullUrl", "")) if entry.get("fullUrl") else None
        if stored_id is None and given and given.startswith(resource["resourceType"] + "/"):
            stored_id = given.partition("/")[2] if await read_or_none(ops, given) is not None else None
        resource["id"] = stored_id or resource.get("id") or await new_id(ops, resource)
        planned.append(PlannedEntry(index, resource, exists=stored_id is not None))
        if entry.get("fullUrl"):
            targets[entry["fullUrl"]] = f"{resource['resourceType']}/{resource['id']}"
        if given:
            targets.setdefault(given, f"{resource['resourceType']}/{resource['id']}")

    issues: list[Issue] = []
    known_on_server: dict[str, bool] = {}
    for item in planned:
        for path, node in walk_references(item.resource, item.expression):
            original = node["reference"]
            if original.startswith("#"):
                continue
            if original in targets:
                node["reference"] = targets[original]
                continue
            local = local_form(original)
            if local and local in targets:
                node["reference"] = targets[local]
                continue
            if original.startswith(("http://", "https://")):
                continue  # an absolute reference to another server: not ours to resolve
            if local and local not in known_on_server:
                known_on_server[local] = await read_or_none(ops, local) is not None
            if not local or original.startswith("urn:") or not known_on_server[local]:
                issues.append(error("not-found", f"Reference {original!r} resolves to no entry and no stored resource", path))
    if issues:
        raise unprocessable(issues)
    return WritePlan(planned)


class Resolver:
    """Reads a local reference: the (rewritten) submission first, then the store."""

    def __init__(self, ops: ResourceOperations, plan: WritePlan | None = None) -> None:
        self.ops = ops
        self.plan = plan or WritePlan([])
        self._cache: dict[str, dict[str, Any] | None] = {}

    async def get(self, reference: str | None) -> dict[str, Any] | None:
        if not reference:
            return None
        if reference in self.plan.by_reference:
            return self.plan.by_reference[reference].resource
        if reference not in self._cache:
            self._cache[reference] = await read_or_none(self.ops, reference)
        return self._cache[reference]

    def expression(self, reference: str, element: str) -> str:
        """FHIRPath of ``element`` of the resource ``reference`` names (entry-indexed when submitted)."""
        entry = self.plan.by_reference.get(reference)
        prefix = entry.expression if entry else reference.partition("/")[0]
        return f"{prefix}.{element}"
