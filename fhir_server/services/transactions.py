"""Batch and transaction Bundles (``POST [base]``), and loading documents through the same path.

A transaction runs inside one ``store.atomically()``: every entry succeeds or nothing is written (and a run that
loses a race with a concurrent request runs again, seeing its writes). Entries
run in the order FHIR prescribes (DELETE, POST, PUT/PATCH, GET/HEAD); ``urn:uuid:`` fullUrls are resolved to
the ids their entries get (ids are chosen before any write, so references can be rewritten up front) and
conditional references (``Patient?identifier=...``) to the one resource they match. A batch runs each entry
on its own: a failure becomes that entry's ``response.outcome``.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Iterator
from urllib.parse import parse_qsl

from fhir_server.errors import FhirError, Issue, bad_request, not_supported, operation_outcome, precondition_failed
from fhir_server.services.context import RequestContext
from fhir_server.services.queries import history_bundle_for, search_bundle
from fhir_server.storage.versioning import format_timestamp
from fhir_server.services.resources import ResourceService, WriteResult, parse_version_tag
from fhir_server.storage.base import ResourceOperations, StoredResource

# Processing order of a transaction (FHIR R4 3.1.0.11.2); the answer keeps the request's entry order.
METHOD_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
BUNDLE_KINDS = {"batch": "batch-response", "transaction": "transaction-response"}


def processable_kind(bundle: dict[str, Any]) -> str | None:
    """``batch`` or ``transaction`` when the Bundle is one; None for any other type, including a ``type`` that
    is not even a string (a list cannot be looked up among the kinds)."""
    kind = bundle.get("type")
    return kind if isinstance(kind, str) and kind in BUNDLE_KINDS else None


def status_line(status: int) -> str:
    """``201`` -> ``201 Created`` (Bundle.entry.response.status)."""
    return f"{status} {HTTPStatus(status).phrase}"


@dataclass
class EntryRequest:
    """One entry's ``request``, split into what the interaction needs."""

    index: int
    method: str
    path: list[str]  # ``["Patient"]``, ``["Patient", "1"]``, ``["Patient", "1", "_history", "2"]``
    query: str
    full_url: str | None
    resource: dict[str, Any] | None
    if_none_exist: str | None = None
    if_match: int | None = None
    assigned_id: str | None = None  # POST entries of a transaction: the id chosen before writing
    existing: StoredResource | None = None  # POST entries whose ifNoneExist matched

    @property
    def resource_type(self) -> str:
        return self.path[0] if self.path else ""

    @property
    def location(self) -> str:
        return "Bundle.entry[%d]" % self.index


def _relative_url(url: str, base_url: str) -> str:
    if url.startswith(base_url + "/"):
        return url[len(base_url) + 1 :]
    return url.lstrip("/")


def parse_entry(index: int, entry: Any, base_url: str) -> EntryRequest:
    """Check and split ``Bundle.entry[index]``; 400 naming the entry when it is unusable."""
    where = f"Bundle.entry[{index}]"
    if not isinstance(entry, dict):
        raise bad_request(f"{where} must be an object", where, code="structure")
    request = entry.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("url"), str) or not request.get("method"):
        raise bad_request(f"{where}.request needs a method and a url", f"{where}.request", code="required")
    method = str(request["method"]).upper()
    if method not in METHOD_ORDER:
        raise bad_request(f"{where}.request.method {method!r} is not an HTTP method of FHIR", f"{where}.request.method")
    for key in ("ifNoneExist", "ifMatch"):
        if request.get(key) is not None and not isinstance(request[key], str):
            raise bad_request(f"{where}.request.{key} must be a string", f"{where}.request.{key}")
    full_url = entry.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise bad_request(f"{where}.fullUrl must be a string", f"{where}.fullUrl")
    url_path, _, query = _relative_url(request["url"], base_url).partition("?")
    resource = entry.get("resource")
    if resource is not None and not isinstance(resource, dict):
        raise bad_request(f"{where}.resource must be a resource object", f"{where}.resource", code="structure")
    return EntryRequest(
        index=index,
        method=method,
        path=[segment for segment in url_path.split("/") if segment],
        query=query,
        full_url=full_url,
        resource=resource,
        if_none_exist=request.get("ifNoneExist"),
        if_match=parse_version_tag(request.get("ifMatch"), f"{where}.request.ifMatch"),
    )


def iter_references(node: Any) -> Iterator[dict[str, Any]]:
    """Every object carrying a string ``reference`` anywhere in ``node`` (iterative: no recursion limit)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            if isinstance(current.get("reference"), str):
                yield current
            stack.extend(value for value in current.values() if isinstance(value, (dict, list)))
        elif isinstance(current, list):
            stack.extend(value for value in current if isinstance(value, (dict, list)))


def is_conditional_reference(reference: str) -> bool:
    return "?" in reference and not reference.startswith(("#", "http:", "https:", "urn:"))


def entry_issues(entry: EntryRequest, exc: FhirError) -> list[Issue]:
    """The error's issues re-anchored on the entry: ``Patient.name`` -> ``Bundle.entry[3].resource.name``."""
    prefix = f"{entry.location}.resource"

    def anchor(expression: str) -> str:
        if expression.startswith("Bundle.entry["):
            return expression
        head, dot, rest = expression.partition(".")
        if not head[:1].isupper():
            return f"{prefix}.{expression}"
        return f"{prefix}.{rest}" if dot else prefix

    return [
        Issue(
            issue.severity,
            issue.code,
            f"{entry.location} ({entry.method} {'/'.join(entry.path)}): {issue.diagnostics}",
            tuple(anchor(e) for e in issue.expression) or (entry.location,),
            issue.details_code,
        )
        for issue in exc.issues
    ]


@dataclass
class BundleProcessor:
    """Runs batch and transaction Bundles through the single-resource service."""

    service: ResourceService

    async def process(self, ctx: RequestContext, bundle: dict[str, Any]) -> dict[str, Any]:
        """The ``batch-response`` / ``transaction-response`` Bundle for a ``batch`` / ``transaction``."""
        if bundle.get("resourceType") != "Bundle":
            raise bad_request("POST to the base accepts a Bundle of type batch or transaction", "resourceType")
        kind = processable_kind(bundle)
        if kind is None:
            raise bad_request(f"Bundle.type must be batch or transaction, not {bundle.get('type')!r}", "Bundle.type")
        raw_entries = bundle.get("entry") or []
        if not isinstance(raw_entries, list):
            raise bad_request("Bundle.entry must be an array", "Bundle.entry", code="structure")
        if kind == "transaction":
            responses = await self._transaction(ctx, raw_entries)
        else:
            responses = await self._batch(ctx, raw_entries)
        return {"resourceType": "Bundle", "type": BUNDLE_KINDS[kind], "entry": responses}

    # -- transaction -----------------------------------------------------------------------------------------
    async def _transaction(self, ctx: RequestContext, raw_entries: list[Any]) -> list[dict[str, Any]]:
        for index, raw in enumerate(raw_entries):  # a malformed entry is refused before any transaction
            parse_entry(index, raw, ctx.base_url)
        return await self.service.store.atomically(lambda tx: self._run_transaction(ctx, raw_entries, tx))

    async def _run_transaction(
        self, ctx: RequestContext, raw_entries: list[Any], tx: ResourceOperations
    ) -> list[dict[str, Any]]:
        """One run of a transaction's entries in ``tx``. The store may run it again after a conflict, so it works
        on a copy of the entries (references are rewritten in place, to ids chosen afresh on every run)."""
        entries = [parse_entry(index, raw, ctx.base_url) for index, raw in enumerate(copy.deepcopy(raw_entries))]
        responses: list[dict[str, Any]] = [{} for _ in entries]
        mapping = await self._resolve_identities(tx, entries)
        for entry in entries:
            await self._rewrite_references(tx, entry, mapping)
        for entry in sorted(entries, key=lambda e: METHOD_ORDER[e.method]):
            try:
                responses[entry.index] = await self._execute(ctx, entry, tx)
            except FhirError as exc:
                raise FhirError(entry_issues(entry, exc), exc.status, exc.headers) from None
        return responses

    async def _resolve_identities(self, tx: ResourceOperations, entries: list[EntryRequest]) -> dict[str, str]:
        """fullUrl -> ``Type/id`` for every entry that creates or names a resource, before anything is written."""
        mapping: dict[str, str] = {}
        for entry in entries:
            try:
                reference = await self._identity_of(tx, entry)
            except FhirError as exc:
                raise FhirError(entry_issues(entry, exc), exc.status, exc.headers) from None
            if entry.full_url and reference:
                mapping[entry.full_url] = reference
        return mapping

    async def _identity_of(self, tx: ResourceOperations, entry: EntryRequest) -> str | None:
        if entry.method == "POST" and len(entry.path) == 1:
            if entry.if_none_exist:
                matches = await self.service.find_to_write(tx, entry.resource_type, entry.if_none_exist)
                if len(matches) > 1:
                    raise precondition_failed(f"ifNoneExist {entry.if_none_exist!r} matches more than one resource")
                if matches:
                    entry.existing = matches[0]
                    return matches[0].reference
            entry.assigned_id = str(uuid.uuid4())
            return f"{entry.resource_type}/{entry.assigned_id}"
        if entry.method == "PUT" and len(entry.path) == 2:
            return "/".join(entry.path)
        return None

    async def _rewrite_references(self, tx: ResourceOperations, entry: EntryRequest, mapping: dict[str, str]) -> None:
        """Point ``urn:uuid:`` and conditional references of ``entry.resource`` at the resolved resources."""
        if entry.resource is None:
            return
        for holder in iter_references(entry.resource):
            reference = holder["reference"]
            if reference in mapping:
                holder["reference"] = mapping[reference]
            elif is_conditional_reference(reference):
                try:
                    holder["reference"] = await self._resolve_conditional(tx, reference)
                except FhirError as exc:
                    raise FhirError(entry_issues(entry, exc), exc.status, exc.headers) from None

    async def _resolve_conditional(self, tx: ResourceOperations, reference: str) -> str:
        resource_type, _, query = reference.partition("?")
        matches = await self.service.find(tx, resource_type, query)
        if len(matches) != 1:
            raise precondition_failed(
                f"conditional reference {reference!r} matches {len(matches) or 'no'}"
                f"{'+' if len(matches) > 1 else ''} resources: exactly one is required"
            )
        return matches[0].reference

    # -- batch -----------------------------------------------------------------------------------------------
    async def _batch(self, ctx: RequestContext, raw_entries: list[Any]) -> list[dict[str, Any]]:
        responses: list[dict[str, Any]] = [{} for _ in raw_entries]
        parsed: list[EntryRequest] = []
        for index, raw in enumerate(raw_entries):
            try:
                parsed.append(parse_entry(index, raw, ctx.base_url))
            except FhirError as exc:
                responses[index] = failure_response(exc)
        for entry in sorted(parsed, key=lambda e: METHOD_ORDER[e.method]):
            try:
                responses[entry.index] = await self._execute(ctx, entry, None)
            except FhirError as exc:
                responses[entry.index] = failure_response(FhirError(entry_issues(entry, exc), exc.status))
        return responses

    # -- one entry -------------------------------------------------------------------------------------------
    async def _execute(self, ctx: RequestContext, entry: EntryRequest, tx: ResourceOperations | None) -> dict[str, Any]:
        """Run one entry (``tx`` None: on its own, as in a batch) and build its response entry."""
        if entry.method == "PATCH":
            raise not_supported("PATCH is not supported", status=405)
        if any(segment.startswith("$") for segment in entry.path):
            raise not_supported(f"operations ({'/'.join(entry.path)}) are not supported inside a Bundle")
        service = self.service
        service.require_type(entry.resource_type)
        if entry.method in ("GET", "HEAD"):
            return await self._read_entry(ctx, entry, tx or service.store)
        if entry.method == "DELETE":
            if len(entry.path) == 1 and entry.query:
                marker = await service.conditional_delete(entry.resource_type, entry.query, ops=tx)
            elif len(entry.path) == 2:
                marker = await service.delete(entry.path[0], entry.path[1], if_match=entry.if_match, ops=tx)
            else:
                raise bad_request(f"DELETE url must be Type/id or Type?query, not {'/'.join(entry.path)!r}")
            response: dict[str, Any] = {"status": status_line(204)}
            if marker is not None:
                response["etag"] = marker.etag
            return {"response": response}
        resource = self._entry_resource(entry)
        if entry.method == "POST":
            if len(entry.path) != 1:
                raise bad_request(f"POST url must be a resource type, not {'/'.join(entry.path)!r}")
            if entry.existing is not None:
                result = WriteResult(entry.existing, created=False, existing=True)
            elif entry.assigned_id is not None:
                result = await service.create_with_id(resource, entry.assigned_id, tx)
            else:
                result = await service.create(resource, if_none_exist=entry.if_none_exist, ops=tx)
        elif len(entry.path) == 1 and entry.query:
            result = await service.conditional_update(entry.resource_type, entry.query, resource, ops=tx)
        elif len(entry.path) == 2:
            result = await service.update(entry.path[0], entry.path[1], resource, if_match=entry.if_match, ops=tx)
        else:
            raise bad_request(f"PUT url must be Type/id or Type?query, not {'/'.join(entry.path)!r}")
        return write_entry(ctx, result)

    @staticmethod
    def _entry_resource(entry: EntryRequest) -> dict[str, Any]:
        resource = entry.resource
        if resource is None:
            raise bad_request(f"{entry.method} needs a resource", f"{entry.location}.resource", code="required")
        if resource.get("resourceType") != entry.resource_type:
            raise bad_request(
                f"resourceType {resource.get('resourceType')!r} does not match the url type {entry.resource_type!r}",
                f"{entry.location}.resource.resourceType",
            )
        return resource

    async def _read_entry(self, ctx: RequestContext, entry: EntryRequest, ops: ResourceOperations) -> dict[str, Any]:
        """GET entries: search, read, history or vread, answered as a REST GET would be."""
        service, path = self.service, entry.path
        params = parse_qsl(entry.query, keep_blank_values=True)
        if len(path) == 1:
            bundle = await search_bundle(ops, service.settings, ctx, path[0], params)
            return {"resource": bundle, "response": {"status": status_line(200)}}
        if len(path) == 3 and path[2] == "_history":
            bundle = await history_bundle_for(ops, service.settings, ctx, params, path[0], path[1])
            return {"resource": bundle, "response": {"status": status_line(200)}}
        if len(path) == 2:
            stored = await service.read(path[0], path[1], ops)
        elif len(path) == 4 and path[2] == "_history":
            stored = await service.vread(path[0], path[1], parse_version_tag(path[3], "version id") or 0, ops)
        else:
            raise bad_request(f"unsupported GET url {'/'.join(path)!r}")
        return {
            "fullUrl": ctx.url_of(stored.reference),
            "resource": stored.resource,
            "response": {"status": status_line(200), **version_fields(stored)},
        }


def version_fields(stored: StoredResource) -> dict[str, str]:
    return {"etag": stored.etag, "lastModified": format_timestamp(stored.last_updated)}


def write_entry(ctx: RequestContext, result: WriteResult) -> dict[str, Any]:
    """Response entry of a create/update: status, location, etag, lastModified; body per ``Prefer``."""
    stored = result.stored
    response: dict[str, Any] = {
        "status": status_line(result.status),
        "location": f"{stored.reference}/_history/{stored.version_id}",
        **version_fields(stored),
    }
    entry: dict[str, Any] = {"fullUrl": ctx.url_of(stored.reference)}
    body = ctx.preferred_body(stored.resource, result.warnings)
    if ctx.prefer_return == "OperationOutcome":
        response["outcome"] = body
    elif body is not None:
        entry["resource"] = body
    entry["response"] = response
    return entry


def failure_response(exc: FhirError) -> dict[str, Any]:
    """A batch entry that failed: its status and OperationOutcome."""
    return {"response": {"status": status_line(exc.status), "outcome": operation_outcome(exc.issues)}}


def as_transaction(document: dict[str, Any]) -> dict[str, Any]:
    """Any loadable document as a Bundle to process: batches and transactions as they are; a resource or
    another Bundle (collection, searchset...) as a transaction that keeps ids (PUT) or lets the server assign
    them (POST)."""
    if document.get("resourceType") == "Bundle":
        if processable_kind(document):
            return document
        carried = [
            (entry["resource"], entry.get("fullUrl"))
            for entry in document.get("entry") or []
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
        ]
    else:
        carried = [(document, None)]
    entries = []
    for resource, full_url in carried:
        resource_type, resource_id = resource.get("resourceType", ""), resource.get("id")
        request = {"method": "PUT", "url": f"{resource_type}/{resource_id}"} if resource_id else {
            "method": "POST", "url": resource_type}
        entry: dict[str, Any] = {"resource": resource, "request": request}
        if full_url:
            entry["fullUrl"] = full_url
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
