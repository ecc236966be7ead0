"""Per-organization access, in one place for every path: two store wrappers.

- :class:`StampingStore` (innermost, below the change observers) stamps every resource a request writes with its
  tenants in ``meta.security`` (system :data:`TENANT_SYSTEM`, code ``Organization/id``): the caller's organization,
  the organizations the written resources name as tenants (``tenant_elements`` in the access data: the member's
  physician group, the Task's owner, a PractitionerRole or Practitioner resolved to its organizations by
  :mod:`.tenant_references`), and the tenants of the version it replaces, so an update never takes access
  away; updating a case's Task or ClaimResponse (``case_types``, outside a Bundle) makes its tenants those of the
  request's later writes (a decision's notices reach the submitting EHR). Tags a client sends in that system are
  dropped: a client cannot grant itself access.
- :class:`GuardedStore` (outermost, what the API and the domain use) lets a caller see only resources of its
  organization (the plan everything; shared directory types everyone): reads, version reads and instance history
  of another tenant's resource answer the very 404 an unknown id gets, searches (and therefore ``_include``,
  ``_revinclude`` and ``_total``) carry a ``_security`` criterion each store translates like any other, updates
  and deletes of another tenant's resource are 404. Internal security records are never visible.

Outside an HTTP request (the delivery worker, the command line) and in development mode, nothing is filtered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, TypeVar

from fhir_server.errors import FhirError, error, not_found, unprocessable
from fhir_server.second_opinion.references import read_or_none
from fhir_server.security.access import AccessRules
from fhir_server.security.principal import Principal, current
from fhir_server.security.refusals import insufficient_scope, server_only
from fhir_server.security.scopes import permits
from fhir_server.security.tenant_references import local_references, named_tenants
from fhir_server.storage.base import Page, ResourceOperations, ResourceStore, StoredResource
from fhir_server.storage.delegation import WrapsOperations, WrapsStore
from fhir_server.storage.versioning import resource_type_of

if TYPE_CHECKING:
    from fhir_server.search.query import SearchQuery

T = TypeVar("T")
TENANT_SYSTEM = "http://example.org/fhir/second-opinion/CodeSystem/tenant"
INTERNAL_SYSTEM = "http://example.org/fhir/second-opinion/CodeSystem/security-record"
INTERNAL_CODE = "internal"
INTERNAL_RECORD_TYPE = "Basic"  # the type security records are stored as (never exposed: see GuardedStore)


# -- tags --------------------------------------------------------------------------------------------------------
def tenants_of(resource: dict[str, Any] | None) -> set[str]:
    """The organizations a stored resource is stamped with."""
    if not resource:
        return set()
    labels = (resource.get("meta") or {}).get("security") or []
    return {label.get("code") for label in labels if isinstance(label, dict) and label.get("system") == TENANT_SYSTEM}


def is_internal(resource: dict[str, Any] | None) -> bool:
    labels = ((resource or {}).get("meta") or {}).get("security") or []
    return any(isinstance(label, dict) and label.get("system") == INTERNAL_SYSTEM for label in labels)


def with_tenants(resource: dict[str, Any], tenants: Iterable[str]) -> dict[str, Any]:
    """A copy of ``resource`` whose tenant labels are exactly ``tenants`` (other security labels kept)."""
    meta = dict(resource.get("meta") or {})
    labels = [label for label in meta.get("security") or [] if not (isinstance(label, dict) and label.get("system") == TENANT_SYSTEM)]
    labels += [{"system": TENANT_SYSTEM, "code": tenant} for tenant in sorted(tenants)]
    meta["security"] = labels
    return {**resource, "meta": meta}


async def declare_tenants(ops: ResourceOperations, resources: Iterable[dict[str, Any] | None]) -> None:
    """Make the tenants these (about to be written) resources name tenants of everything the current request
    writes: called before a transaction whose first writes would otherwise come before the resource naming them
    (``$submit`` writes the ServiceRequest before the Task that names the deciding group, and before the Patient
    whose PCP names the member's group). ``ops`` reads the provider directory (see :mod:`.tenant_references`)."""
    state = current()
    if state is None or state.principal is None or state.principal.development or state.rules is None:
        return
    for resource in resources:
        if resource:
            state.tenants |= await named_tenants(ops, resource, state.rules)


def _stamping_principal() -> Principal | None:
    state = current()
    if state is None or state.principal is None or state.principal.development:
        return None
    return state.principal


# -- stamping (below the observers: their writes are stamped too) -------------------------------------------------
class _Stamping(WrapsOperations):
    """The stamping of writes, shared by the store and its transactions."""

    inner: ResourceOperations
    _rules: AccessRules

    async def _stamped(self, resource: dict[str, Any], replaces: bool) -> dict[str, Any]:
        principal = _stamping_principal()
        state = current()
        if principal is None or state is None:
            return resource
        state.tenants.add(principal.organization)
        named = await named_tenants(self.inner, resource, self._rules)
        state.tenants |= named
        tenants = set(state.tenants)
        await self._share(principal, resource, named - {""})
        if replaces and isinstance(resource.get("id"), str):
            try:
                kept = tenants_of((await self.inner.read(resource_type_of(resource), resource["id"])).resource)
            except FhirError:
                kept = set()  # update-as-create, or of a deleted resource: nothing to keep
            tenants |= kept
            if resource_type_of(resource) in self._rules.case_types and not state.check_scopes_in_store:
                state.tenants |= kept  # the rest of this decision is the case's tenants' too
        return with_tenants(resource, tenants - {""})

    async def _share(self, principal: Principal, resource: dict[str, Any], tenants: set[str]) -> None:
        """Make ``tenants`` (those ``resource`` names) tenants of what it refers to along ``tenant_propagation``,
        and so on from there: a Task created for a request an EHR stored before shares that request (and its
        member, coverage and documents) with the Task's owner. Only what the writer sees is shared; a resource
        that has the tenants already is left as it is and not followed further (a case written by ``$submit`` is
        stamped whole). Each one shared gets a new version, written below the observers: nothing reacts to it."""
        pending = local_references(resource, self._rules.tenant_propagation.get(resource_type_of(resource), ()))
        seen: set[str] = set()
        while tenants and pending:
            reference = pending.pop()
            resource_type = reference.partition("/")[0]
            if reference in seen or self._rules.is_shared(resource_type):
                continue
            seen.add(reference)
            target = await read_or_none(self.inner, reference)
            if target is None or is_internal(target):
                continue
            has = tenants_of(target)
            if tenants <= has or not (principal.sees_everything or principal.organization in has):
                continue
            await self.inner.update(with_tenants(target, has | tenants))
            pending += local_references(target, self._rules.tenant_propagation.get(resource_type, ()))

    async def create(self, resource: dict[str, Any], *, resource_id: str | None = None) -> StoredResource:
        return await self.inner.create(await self._stamped(resource, False), resource_id=resource_id)

    async def update(self, resource: dict[str, Any], *, if_match: int | None = None) -> tuple[StoredResource, bool]:
        return await self.inner.update(await self._stamped(resource, True), if_match=if_match)

    async def delete(self, resource_type: str, resource_id: str, *, if_match: int | None = None) -> StoredResource | None:
        return await self.inner.delete(resource_type, resource_id, if_match=if_match)


class StampingOperations(_Stamping):
    def __init__(self, tx: ResourceOperations, rules: AccessRules) -> None:
        self.inner = tx
        self._rules = rules


class StampingStore(_Stamping, WrapsStore):
    """The raw store, with every write of an authenticated request stamped with its tenants."""

    def __init__(self, inner: ResourceStore, rules: AccessRules) -> None:
        self.inner = inner
        self._rules = rules

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StampingOperations]:
        async with self.inner.transaction() as tx:
            yield StampingOperations(tx, self._rules)

    async def atomically(self, work: Callable[[ResourceOperations], Awaitable[T]]) -> T:
        return await self.inner.atomically(lambda tx: work(StampingOperations(tx, self._rules)))


PATIENT_ELEMENTS = ("subject", "patient", "for", "beneficiary")
MAX_AUDITED_PATIENTS = 10


def note_patient(stored: StoredResource | None) -> None:
    """Remember, for the request's audit record, whose data a resource is (the Patient, or the Patient its
    subject/patient/for/beneficiary names)."""
    state = current()
    if state is None or stored is None or stored.resource is None or len(state.patients) >= MAX_AUDITED_PATIENTS:
        return
    if stored.resource_type == "Patient":
        state.patients.add(stored.reference)
        return
    for element in PATIENT_ELEMENTS:
        value = stored.resource.get(element)
        reference = value.get("reference") if isinstance(value, dict) else None
        if isinstance(reference, str) and reference.startswith("Patient/"):
            state.patients.add(reference)
            return


# -- the guard (above the observers: what callers see) -------------------------------------------------------------
def _hidden(resource_type: str, resource_id: str) -> FhirError:
    """Exactly what an unknown id answers: another tenant's resource does not exist for this caller."""
    return not_found(f"{resource_type}/{resource_id} is not known")


def _no_client_ids(resource_type: str, resource_id: str) -> FhirError:
    """An update of an id the caller does not see, by a caller who may not create under an id it chooses: FHIR's
    answer for "the resource did not exist prior to the update, and the server does not allow client defined
    ids" (http.html, update), for an unknown id and another tenant's alike."""
    return FhirError([error("not-supported", f"{resource_type}/{resource_id} is not known, and this client may not "
                            "create a resource under an id it chooses (update as create): create it with POST")],
                     405, {"Allow": "GET, PATCH, DELETE"})


def creates_under_own_ids(principal: Principal, resource_type: str, rules: AccessRules) -> bool:
    """Whether the caller may create ``resource_type`` with PUT under an id it chooses (update as create): the
    plan, and anyone for the shared directory types. For anyone else an unknown id and another tenant's must answer
    alike, and an unknown one can only be refused: to create one would be to tell it from another tenant's."""
    return principal.development or principal.sees_everything or rules.is_shared(resource_type)


class _Guard(WrapsOperations):
    """Tenancy and (for Bundles) scope checks on reads and writes, shared by the store and its transactions."""

    inner: ResourceOperations
    _rules: AccessRules

    # who and what
    @staticmethod
    def _principal() -> Principal | None:
        state = current()
        return state.principal if state is not None else None

    def _check_scope(self, principal: Principal, resource_type: str, permission: str) -> None:
        state = current()
        if state is None or not state.check_scopes_in_store or principal.development:
            return
        if not permits(principal.scopes, resource_type, permission):
            raise insufficient_scope(f"system/{resource_type}.{permission}")

    def visible(self, principal: Principal, resource_type: str, resource: dict[str, Any] | None) -> bool:
        if is_internal(resource):
            return False
        if principal.sees_everything or self._rules.is_shared(resource_type):
            return True
        return principal.organization in tenants_of(resource)

    async def _last_content(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """The content of the newest version that has any (a deleted resource's tenants are its last version's)."""
        page = await self.inner.history(resource_type, resource_id, count=2)
        return next((item.resource for item in page.items if item.resource is not None), None)

    async def _require_visible(self, principal: Principal, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """404 unless the resource (current, or last before its deletion) is visible; unknown ids pass through.
        Answers that content (None for an unknown id, and in development mode, where nothing is checked)."""
        if principal.development:
            return None
        content = await self._last_content(resource_type, resource_id)
        if content is not None and not self.visible(principal, resource_type, content):
            raise _hidden(resource_type, resource_id)
        return content

    async def _replaced(self, principal: Principal, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """The content an update replaces (None for a new one). An id the caller does not see is 405 for a caller
        who may not create under its own ids (see :func:`creates_under_own_ids`), 404 (another tenant's) or a
        creation (unknown) for one who may."""
        if creates_under_own_ids(principal, resource_type, self._rules):
            return await self._require_visible(principal, resource_type, resource_id)
        content = await self._last_content(resource_type, resource_id)
        if content is None or not self.visible(principal, resource_type, content):
            raise _no_client_ids(resource_type, resource_id)
        return content

    async def _check_shared_references(self, principal: Principal, resource: dict[str, Any],
                                       previous: dict[str, Any] | None) -> None:
        """A write that starts sharing what it refers to (a type with tenant elements and ``tenant_propagation``:
        a Task's focus and basedOn) may newly name there only what the caller sees. Another tenant's resource is refused exactly as an unknown one is
        (422, the same words), so a Task can neither share what its writer cannot see nor tell whether it exists."""
        resource_type = resource_type_of(resource)
        starts_sharing = resource_type in self._rules.tenant_elements  # a type that names tenants shares with them
        elements = self._rules.tenant_propagation.get(resource_type, ()) if starts_sharing else ()
        if principal.development or not elements:
            return
        before = set(local_references(previous, elements)) if previous else set()
        for element in elements:
            for reference in local_references(resource, (element,)):
                if reference in before:
                    continue
                target_type, _, target_id = reference.partition("/")
                content = await self._last_content(target_type, target_id)
                if content is None or not self.visible(principal, target_type, content):
                    where = f"{resource_type}.{element}"
                    raise unprocessable([error("not-found", f"{where} names {reference}, which is not known", where)])

    # reads
    async def read(self, resource_type: str, resource_id: str) -> StoredResource:
        principal = self._principal()
        if principal is None:
            return await self.inner.read(resource_type, resource_id)
        self._check_scope(principal, resource_type, "r")
        try:
            stored = await self.inner.read(resource_type, resource_id)
        except FhirError as error:
            if error.status == 410:
                await self._require_visible(principal, resource_type, resource_id)
            raise
        if not self.visible(principal, resource_type, stored.resource):
            raise _hidden(resource_type, resource_id)
        note_patient(stored)
        return stored

    async def vread(self, resource_type: str, resource_id: str, version_id: int) -> StoredResource:
        principal = self._principal()
        if principal is not None:
            self._check_scope(principal, resource_type, "r")
            await self._require_visible(principal, resource_type, resource_id)
        return await self.inner.vread(resource_type, resource_id, version_id)

    async def search(self, query: "SearchQuery") -> Page:
        principal = self._principal()
        if principal is None:
            return await self.inner.search(query)
        self._check_scope(principal, query.resource_type, "s")
        return await self.inner.search(self.scoped(principal, query))

    def scoped(self, principal: Principal, query: "SearchQuery") -> "SearchQuery":
        """The query with the caller's tenant criterion (and internal records left out) added."""
        from fhir_server.search.query import Criterion, TokenValue

        extra = []
        if query.resource_type == INTERNAL_RECORD_TYPE:
            extra.append(Criterion("_security", "token", (TokenValue(INTERNAL_SYSTEM, INTERNAL_CODE),), modifier="not"))
        if not (principal.sees_everything or self._rules.is_shared(query.resource_type)):
            extra.append(Criterion("_security", "token", (TokenValue(TENANT_SYSTEM, principal.organization),)))
        return replace(query, criteria=[*query.criteria, *extra])

    async def history(self, resource_type: str | None = None, resource_id: str | None = None, *,
                      since: datetime | None = None, count: int = 20, offset: int = 0) -> Page:
        principal = self._principal()
        if principal is not None and resource_type and resource_id:
            self._check_scope(principal, resource_type, "r")
            await self._require_visible(principal, resource_type, resource_id)
        page = await self.inner.history(resource_type, resource_id, since=since, count=count, offset=offset)
        if principal is None:
            return page
        items = [item for item in page.items if item.resource is None or self.visible(principal, item.resource_type, item.resource)]
        return Page(items, page.total if len(items) == len(page.items) else None, page.has_more)

    # writes
    def _check_write(self, principal: Principal, resource_type: str, permission: str) -> None:
        if principal.development:
            return
        if resource_type in self._rules.server_only_types:
            raise server_only(resource_type)
        self._check_scope(principal, resource_type, permission)

    async def create(self, resource: dict[str, Any], *, resource_id: str | None = None) -> StoredResource:
        principal = self._principal()
        if principal is not None:
            self._check_write(principal, resource_type_of(resource), "c")
            await self._check_shared_references(principal, resource, None)
        stored = await self.inner.create(resource, resource_id=resource_id)
        note_patient(stored)
        return stored

    async def update(self, resource: dict[str, Any], *, if_match: int | None = None) -> tuple[StoredResource, bool]:
        principal = self._principal()
        if principal is not None:
            resource_type = resource_type_of(resource)
            self._check_write(principal, resource_type, "u")
            previous = None
            if isinstance(resource.get("id"), str):
                previous = await self._replaced(principal, resource_type, resource["id"])
            await self._check_shared_references(principal, resource, previous)
        stored, created = await self.inner.update(resource, if_match=if_match)
        note_patient(stored)
        return stored, created

    async def delete(self, resource_type: str, resource_id: str, *, if_match: int | None = None) -> StoredResource | None:
        principal = self._principal()
        if principal is not None:
            self._check_write(principal, resource_type, "d")
            await self._require_visible(principal, resource_type, resource_id)
        return await self.inner.delete(resource_type, resource_id, if_match=if_match)


class GuardedOperations(_Guard):
    def __init__(self, tx: ResourceOperations, rules: AccessRules) -> None:
        self.inner = tx
        self._rules = rules


class GuardedStore(_Guard, WrapsStore):
    """What the API and the domain read and write through: the caller's organization's view of the store."""

    def __init__(self, inner: ResourceStore, rules: AccessRules) -> None:
        self.inner = inner
        self._rules = rules

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[GuardedOperations]:
        async with self.inner.transaction() as tx:
            yield GuardedOperations(tx, self._rules)

    async def atomically(self, work: Callable[[ResourceOperations], Awaitable[T]]) -> T:
        return await self.inner.atomically(lambda tx: work(GuardedOperations(tx, self._rules)))
